"""Local stand-ins for Firetext, MMG and SES that speak their real formats (`runfakeproviders`)."""

from fakes.behaviour import OUTCOMES, Behaviour, BehaviourError, parse_outcomes
from fakes.server import FakeProviderServer

__all__ = ["OUTCOMES", "Behaviour", "BehaviourError", "FakeProviderServer", "parse_outcomes"]
