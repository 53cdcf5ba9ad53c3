"""`((placeholder))` fields in template text: find them, fill them, sanitise values.

Pure functions, no database. A placeholder's name is matched without regard to case or to
spaces inside the brackets: `((First name))`, `((first name))` and `((firstname))` are one.
"""

import re
from collections.abc import Iterable, Mapping

PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")

# Characters escaped with a backslash in a value named by `sanitise_content_for` (contract §11).
SANITISED_CHARACTERS = frozenset("`*_()\\{}[]<>#+-.!|")

Value = str | int | float | list


class MissingPersonalisation(Exception):
    def __init__(self, names: list[str]):
        self.names = names
        super().__init__(", ".join(names))


class PersonalisationRefused(Exception):
    """Values that can't go where their placeholders are; `messages` name each placeholder."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


def placeholder_key(name: str) -> str:
    return "".join(name.split()).lower()


def placeholder_names(*texts: str) -> list[str]:
    """Each placeholder once, as first written, in order of appearance."""
    seen: dict[str, str] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            seen.setdefault(placeholder_key(match.group(1)), match.group(1).strip())
    return list(seen.values())


def personalisation_keyed(personalisation: Mapping[str, Value]) -> dict[str, Value]:
    """Values by placeholder key; a value of None counts as not given."""
    return {placeholder_key(k): v for k, v in personalisation.items() if v is not None}


def placeholders_missing(values: Mapping[str, Value], *texts: str) -> list[str]:
    return [name for name in placeholder_names(*texts) if placeholder_key(name) not in values]


def placeholders_fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each placeholder replaced by its value (keyed by `placeholder_key`)."""
    return PLACEHOLDER.sub(lambda match: values[placeholder_key(match.group(1))], text)


def value_sanitise(value: str) -> str:
    return "".join(f"\\{char}" if char in SANITISED_CHARACTERS else char for char in value)


def value_text(value: Value, *, bullet_lists: bool) -> str:
    """A personalisation value as text: lists as bullets (emails) or comma-separated (texts)."""
    if isinstance(value, list):
        items = [value_text(item, bullet_lists=False) for item in value]
        return "\n".join(f"* {item}" for item in items) if bullet_lists else ", ".join(items)
    return str(value)


def names_keyed(names: Iterable[str]) -> set[str]:
    return {placeholder_key(name) for name in names}
