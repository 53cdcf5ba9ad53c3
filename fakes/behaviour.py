"""How a fake provider behaves: the outcome mix of its receipts and the faults it injects.

Each provider has its own `Behaviour`, set from the command line and changed at run time through
`POST /_control`. Fault rates are exclusive probabilities drawn once per send (reset, then
timeout, error, malformed, slow), so each rate is honoured exactly while they sum to at most 1.
"""

import dataclasses
import random
from dataclasses import dataclass, field

# Receipt outcomes a send can get. `pending-then-delivered` is a Firetext "pending" receipt then
# a "delivered" one (providers without a pending state send only the second); `no-receipt`
# never answers, like a handset that stays off.
OUTCOMES = (
    "delivered",
    "permanent-failure",
    "temporary-failure",
    "pending-then-delivered",
    "no-receipt",
)
DEFAULT_OUTCOMES = {
    "delivered": 90.0,
    "permanent-failure": 4.0,
    "temporary-failure": 4.0,
    "pending-then-delivered": 2.0,
}
# A provider that is "down" answers every send this way.
DOWN_MODES = ("error", "timeout", "reset")
# Checked in this order against one random draw.
FAULTS = ("reset", "timeout", "error", "malformed", "slow")


class BehaviourError(ValueError):
    """A bad command-line value or `/_control` body; the message says which field."""


@dataclass
class Behaviour:
    outcomes: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OUTCOMES))
    receipt_delay: float = 2.0
    duplicate_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    malformed_rate: float = 0.0
    reset_rate: float = 0.0
    down: bool = False
    down_mode: str = "error"

    def fault(self, rng: random.Random) -> str | None:
        """The fault to inject into one send, or None for a normal answer."""
        if self.down:
            return self.down_mode
        draw = rng.random()
        threshold = 0.0
        for fault in FAULTS:
            threshold += getattr(self, f"{fault}_rate")
            if draw < threshold:
                return fault
        return None

    def outcome(self, rng: random.Random) -> str:
        names = list(self.outcomes)
        return rng.choices(names, weights=[self.outcomes[name] for name in names])[0]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def updated(self, changes: dict) -> "Behaviour":
        """A copy with `changes` (from JSON or the command line) checked and applied."""
        values = {}
        for key, value in changes.items():
            key = "down_mode" if key == "mode" else key
            values[key] = _check(key, value)
        return dataclasses.replace(self, **values)


def parse_outcomes(text: str) -> dict[str, float]:
    """`delivered=90,permanent-failure=4` → weights, refusing unknown names and bad numbers."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        if not sep:
            raise BehaviourError(f"outcomes: expected name=weight, got {part!r}")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise BehaviourError(f"outcomes: weight of {name!r} is not a number") from None
    return _check_outcomes(weights)


def _check_outcomes(weights: object) -> dict[str, float]:
    if isinstance(weights, str):
        return parse_outcomes(weights)
    if not isinstance(weights, dict) or not weights:
        raise BehaviourError("outcomes: expected a non-empty mapping of outcome to weight")
    unknown = set(weights) - set(OUTCOMES)
    if unknown:
        raise BehaviourError(
            f"outcomes: unknown {', '.join(sorted(unknown))} (known: {', '.join(OUTCOMES)})"
        )
    if any(not _is_number(w) or w < 0 for w in weights.values()) or not sum(weights.values()):
        raise BehaviourError("outcomes: weights must be numbers >= 0, not all 0")
    return {name: float(w) for name, w in weights.items()}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(key: str, value: object) -> object:
    if key == "outcomes":
        return _check_outcomes(value)
    if key == "down":
        if not isinstance(value, bool):
            raise BehaviourError("down: expected true or false")
        return value
    if key == "down_mode":
        if value not in DOWN_MODES:
            raise BehaviourError(f"mode: expected one of {', '.join(DOWN_MODES)}")
        return value
    if key.endswith("_rate"):
        if (
            key not in Behaviour.__dataclass_fields__
            or not _is_number(value)
            or not 0 <= value <= 1
        ):
            raise BehaviourError(f"{key}: expected a number from 0 to 1")
        return float(value)
    if key in ("receipt_delay", "slow_seconds"):
        if not _is_number(value) or value < 0:
            raise BehaviourError(f"{key}: expected a number of seconds >= 0")
        return float(value)
    raise BehaviourError(f"unknown field {key!r}")
