"""Writing different values to many rows in one statement.

Django's `bulk_update` does it with a `CASE WHEN pk = … THEN …` per row for every column, built
as ORM expressions: resolving and copying them cost the delivery engine most of a text's CPU
(bench/README.md, "The delivery engine's targets"). `rows_update` writes the same SQL directly:
a column with the same value on every row is one plain `SET`, a column that differs one `CASE`
over the primary key, and the statement is the same on SQLite and PostgreSQL (cast to the
column's type where the database wants it, as Django's own `bulk_update` does). Like a
queryset's `update()`, it writes plain values only (no expressions), calls no `save()` and sends
no signals, and `auto_now` fields are not touched unless given.
"""

from collections.abc import Mapping
from typing import Any

from django.db import connections, router

# Rows per statement: SQLite allows 32,766 parameters; each row of a CASE takes two per column.
CHUNK = 500


def rows_update(model, rows: Mapping[Any, Mapping[str, Any]]) -> None:
    """Write `rows` (primary key → {field name: value}): one `UPDATE` per set of fields written
    (and per `CHUNK` rows). A row with no fields is left alone."""
    by_fields: dict[tuple[str, ...], list] = {}
    for pk, fields in rows.items():
        if fields:
            by_fields.setdefault(tuple(sorted(fields)), []).append(pk)
    connection = connections[router.db_for_write(model)]
    for names, pks in by_fields.items():
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            _update(connection, model, names, chunk, [rows[pk] for pk in chunk])


def _update(connection, model, names, pks, values) -> None:
    meta, quote = model._meta, connection.ops.quote_name
    pk_column = quote(meta.pk.column)
    keys = [meta.pk.get_db_prep_value(pk, connection) for pk in pks]
    cast = connection.features.requires_casted_case_in_updates
    sets, params = [], []
    for name in names:
        field = meta.get_field(name)
        column = [field.get_db_prep_save(row[name], connection) for row in values]
        if all(value == column[0] for value in column):
            sets.append(f"{quote(field.column)} = %s")
            params.append(column[0])
            continue
        case = f"CASE {pk_column} {' '.join(['WHEN %s THEN %s'] * len(keys))} END"
        if cast:
            case = f"CAST({case} AS {field.cast_db_type(connection)})"
        sets.append(f"{quote(field.column)} = {case}")
        for key, value in zip(keys, column, strict=True):
            params += [key, value]
    # Names from the model, every value a parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {pk_column} IN ({', '.join(['%s'] * len(keys))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *keys])
