"""Small helpers for the few statements written as SQL text: quoted names from the models and
our own names as literals. Nothing from outside ever becomes SQL text; values are parameters."""

import re

from django.db import connection


def quoted_columns(model) -> dict[str, str]:
    """A model's quoted column names, by field name and by attribute name (`service_id`)."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    return {key: quote(f.column) for f in fields for key in (f.name, f.attname)}


def quoted_table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def sql_literal(text: str) -> str:
    """One of our own names (a status, a type) as an SQL string literal; refuses anything
    else, so nothing from outside ever becomes SQL text."""
    if not re.fullmatch(r"[a-z][a-z :-]*", text):
        raise ValueError(f"not one of our own names: {text!r}")
    return f"'{text}'"


def sql_literals(names) -> str:
    return ", ".join(sql_literal(name) for name in names)
