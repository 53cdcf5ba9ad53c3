"""API keys: finding one by its secret, through the shared cache, and revoking.

A request's key is looked up in the shared cache first (one Redis round trip, no query) and
only on a miss in the database; the entry then lives ENTRY_SECONDS. Revoking stays immediate:
`api_keys_revoke` (the admin's action) writes a revoked entry over any cached one once its
transaction commits, and a miss fills the cache with `add`, which never overwrites (the rule of
`notifyproject.row_cache`). A key deleted (with its service) is marked gone the same way. Only
a change made around this module (an SQL `UPDATE`, a queryset `update()` elsewhere) waits for
the entry to expire, ENTRY_SECONDS at most.

When a key was last used is kept for the admin (`api_key_mark_used`), written at most once a
minute per key by each process.
"""

import time

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from notifyproject.row_cache import GONE, row_entry, row_from_entry
from sending.models import ApiKey, Service, api_key_hash

ENTRY_SECONDS = 60
# Far longer than a lookup takes between its query and its `add`.
REVOKED_ENTRY_SECONDS = 3600
# How stale the admin's "last used" may be: a write on every request would cost a round trip
# and a row lock on one busy row.
USED_WRITE_SECONDS = 60
used_clock = time.monotonic  # seam for tests
_used_written: dict[str, float] = {}  # key hash → when this process last wrote its last use


def _cache_key(key_hash: str) -> str:
    # The entry is the row's columns in order: named for the columns it holds (`2`: with the
    # key type), so a process of another version never reads it misaligned.
    return f"api-key:2:{key_hash}"


def _entry(key: ApiKey) -> dict:
    return {"key": row_entry(key), "service": row_entry(key.service)}


def _from_entry(entry: dict) -> ApiKey:
    key = row_from_entry(ApiKey, entry["key"])
    key.service = row_from_entry(Service, entry["service"])
    return key


def api_key_find(*, secret: str) -> ApiKey | None:
    """The key (with its service) whose secret this is, revoked or not; None when unknown."""
    return api_key_find_by_hash(key_hash=api_key_hash(secret))


def api_key_find_by_hash(*, key_hash: str) -> ApiKey | None:
    """The same, by the key's hash (the /v2 API knows a key by its signature, not its string)."""
    entry = cache.get(_cache_key(key_hash))
    if entry == GONE:
        return None
    if entry is not None:
        return _from_entry(entry)
    key = ApiKey.objects.select_related("service").filter(key_hash=key_hash).first()
    if key is not None:
        cache.add(_cache_key(key_hash), _entry(key), timeout=ENTRY_SECONDS)
    return key


def api_key_mark_used(*, key: ApiKey) -> None:
    """Record that the key was used now (the admin shows it), unless this process did so for it
    within USED_WRITE_SECONDS."""
    now = used_clock()
    last = _used_written.get(key.key_hash)
    if last is not None and now - last < USED_WRITE_SECONDS:
        return
    _used_written[key.key_hash] = now
    ApiKey.objects.filter(id=key.id).update(last_used_at=timezone.now())


def api_keys_revoke(*, keys) -> int:
    """Revoke the keys of the queryset that are not revoked yet; answers how many. Requests
    with them are refused from the moment the transaction commits."""
    with transaction.atomic():
        chosen = list(
            keys.filter(revoked_at__isnull=True).select_related("service").select_for_update()
        )
        now = timezone.now()
        ApiKey.objects.filter(id__in=[key.id for key in chosen]).update(revoked_at=now)
        for key in chosen:
            key.revoked_at = now
        entries = {_cache_key(key.key_hash): _entry(key) for key in chosen}
        transaction.on_commit(lambda: cache.set_many(entries, timeout=REVOKED_ENTRY_SECONDS))
    return len(chosen)


@receiver(post_delete, sender=ApiKey)
def _api_key_deleted(sender, instance: ApiKey, **kwargs) -> None:
    entry = _cache_key(instance.key_hash)
    transaction.on_commit(lambda: cache.set(entry, GONE, timeout=REVOKED_ENTRY_SECONDS))
