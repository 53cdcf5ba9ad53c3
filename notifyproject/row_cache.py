"""Model rows kept in the shared cache, written through when they change.

A read that misses fills the cache with `add`, which never overwrites; a change, once its
transaction commits, `set`s the new row (or `GONE`) over whatever is there. So a read that
fetched the row just before a change can't put the old one back: either its `add` comes first
and the change overwrites it, or the change's entry is there and the `add` is refused. Only a
change made around the model's `save`/`delete` (a queryset `update()`, plain SQL), or one whose
process was killed between its commit and the cache write, waits for the entry to expire: keep
entries short-lived.
"""

from collections.abc import Callable

from django.core.cache import cache
from django.db import models, transaction

GONE = "gone"


def _fields(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def row_entry(instance: models.Model) -> list:
    return [getattr(instance, name) for name in _fields(type(instance))]


def row_from_entry(model, entry: list) -> models.Model:
    return model.from_db("default", _fields(model), entry)


def row_cached(
    key: str, model, load: Callable[[], models.Model | None], *, timeout: int
) -> models.Model | None:
    """The row cached at `key`, or `load()`ed from the database (and cached) on a miss; None
    when it is gone. A row that does not exist is not cached (ids are made here, at random)."""
    entry = cache.get(key)
    if entry == GONE:
        return None
    if entry is not None:
        return row_from_entry(model, entry)
    instance = load()
    if instance is not None:
        cache.add(key, row_entry(instance), timeout=timeout)
    return instance


def row_written(key: str, instance: models.Model | None, *, timeout: int) -> None:
    """After the current transaction commits, `key` holds `instance` (None: `GONE`)."""
    value = GONE if instance is None else row_entry(instance)
    transaction.on_commit(lambda: cache.set(key, value, timeout=timeout))
