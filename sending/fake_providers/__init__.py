"""Local stand-ins for Firetext, MMG and SES that speak their real formats (`runfakeproviders`)."""

from sending.fake_providers.behaviour import OUTCOMES, Behaviour, BehaviourError, parse_outcomes
from sending.fake_providers.server import FakeProviderServer

__all__ = ["OUTCOMES", "Behaviour", "BehaviourError", "FakeProviderServer", "parse_outcomes"]
