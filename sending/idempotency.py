"""Idempotent creates (contract section 4, "Idempotent requests"): the one place a request with
an `Idempotency-Key` is answered once and replayed after.

`idempotent_answer(service=, key=, request_hash=, create=)` runs `create()` (which validates,
writes and answers `(status, body)`) at most once per service and key within KEPT_FOR:

- The key's row holds the request's hash and the answer, and is written in the SAME transaction
  as whatever `create()` writes. So a process killed half-way leaves neither (the key stays
  free), and of two racing requests only one can commit: the unique constraint on
  (service, key) refuses the other, whose writes roll back with it, and it replays the first's.
- While a first request is still in its transaction, another one with its key is told so
  (`IdempotencyInProgress`, 409) instead of waiting: on PostgreSQL a transaction-scoped advisory
  lock on the key says who is in, and is released by commit, rollback or a dead connection. SQLite
  runs one writer at a time, so there the second waits for the first and then replays it.
- A `create()` that raises (a refused request, 4xx) writes nothing, so the key is not taken.
"""

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from sending.models import IdempotencyKey, Service

KEPT_FOR = timedelta(hours=24)
now = timezone.now  # seam for tests


class IdempotencyError(Exception):
    """The request cannot be answered under its key; `message` says why (contract's text)."""

    message = ""


class IdempotencyMismatch(IdempotencyError):
    message = "Idempotency-Key has already been used with a different request"


class IdempotencyInProgress(IdempotencyError):
    message = "a request with this Idempotency-Key is still being processed"


@dataclass(frozen=True)
class IdempotentAnswer:
    status: int
    body: str
    replayed: bool


def idempotency_request_hash(*parts: bytes) -> str:
    """What two requests must share to be "the same request": a SHA-256 of the parts given
    (method, path and the body, for the API)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def idempotent_answer(
    *,
    service: Service,
    key: str,
    request_hash: str,
    create: Callable[[], tuple[int, str]],
) -> IdempotentAnswer:
    """The answer to a request made under `key`: `create()`'s, or the first request's again.

    Raises IdempotencyMismatch when the key was used with another request, IdempotencyInProgress
    when that request has not finished, and whatever `create()` raises (nothing is kept then).
    Costs a create two round trips to the database: the claim (which also reads a stored answer)
    and the key's row.
    """
    try:
        with transaction.atomic():
            claimed, stored = _claim(service=service, key=key)
            if stored is not None:
                return _replay(stored, request_hash)
            if not claimed:
                raise IdempotencyInProgress()
            status, body = create()
            if status < 400:  # a refusal does not take the key
                _key_store(
                    service=service, key=key, request_hash=request_hash, status=status, body=body
                )
    except IntegrityError:
        # Another request with this key committed while ours ran; ours rolled back whole.
        stored = IdempotencyKey.objects.filter(service=service, key=key).first()
        if stored is None:
            raise
        return _replay(stored, request_hash)
    return IdempotentAnswer(status=status, body=body, replayed=False)


def idempotency_keys_sweep(*, batch: int = 1000) -> int:
    """Delete the keys older than KEPT_FOR (scheduled); answers how many went."""
    cutoff = now() - KEPT_FOR
    deleted = 0
    while True:
        ids = list(
            IdempotencyKey.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[
                :batch
            ]
        )
        if not ids:
            return deleted
        deleted += IdempotencyKey.objects.filter(id__in=ids, created_at__lt=cutoff).delete()[0]


def _claim(*, service: Service, key: str) -> tuple[bool, IdempotencyKey | None]:
    """Take the key for this transaction (False when another transaction has it), and read
    the answer stored under it while it is kept. An expired answer (not swept yet) is deleted,
    so the key can be used afresh. On PostgreSQL both are one round trip."""
    if connection.vendor == "postgresql":
        claimed, stored = _claim_postgresql(service=service, key=key)
    else:  # one writer at a time: this transaction is the only one
        claimed, stored = True, IdempotencyKey.objects.filter(service=service, key=key).first()
    if stored is not None and stored.created_at < now() - KEPT_FOR:
        IdempotencyKey.objects.filter(id=stored.id).delete()
        stored = None
    return claimed, stored


def _replay(stored: IdempotencyKey, request_hash: str) -> IdempotentAnswer:
    if stored.request_hash != request_hash:
        raise IdempotencyMismatch()
    return IdempotentAnswer(status=stored.status_code, body=stored.response_body, replayed=True)


_FIELDS = ("id", "service_id", "key", "request_hash", "status_code", "response_body", "created_at")


def _claim_postgresql(*, service: Service, key: str) -> tuple[bool, IdempotencyKey | None]:
    """A transaction-scoped advisory lock on a 64-bit hash of (service, key), and the key's
    row if there is one, in one statement."""
    digest = hashlib.sha256(f"{service.id}\0{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [lock_id, service.id, key])
        claimed, *values = cursor.fetchone()
    if values[0] is None:
        return claimed, None
    return claimed, IdempotencyKey(**dict(zip(_FIELDS, values, strict=True)))


@functools.cache
def _claim_sql() -> str:
    quote = connection.ops.quote_name
    meta = IdempotencyKey._meta
    columns = ", ".join(f"k.{quote(meta.get_field(name).column)}" for name in _FIELDS)
    return (
        f"SELECT pg_try_advisory_xact_lock(%s), {columns} FROM (SELECT 1) AS one "  # noqa: S608
        f"LEFT JOIN {quote(meta.db_table)} AS k "
        f"ON k.{quote(meta.get_field('service').column)} = %s "
        f"AND k.{quote(meta.get_field('key').column)} = %s"
    )


_STORED = ("service", "key", "request_hash", "status_code", "response_body", "created_at")


def _key_store(*, service: Service, key: str, request_hash: str, status: int, body: str) -> None:
    """The key's row, by one plain INSERT: the ORM's `create` cost a keyed create three times
    the CPU of the statement itself (bench/README.md)."""
    fields = [IdempotencyKey._meta.get_field(name) for name in _STORED]
    values = (service.id, key, request_hash, status, body, now())
    with connection.cursor() as cursor:
        cursor.execute(
            _key_store_sql(connection.vendor),
            [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)],
        )


@functools.cache
def _key_store_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    meta = IdempotencyKey._meta
    columns = ", ".join(quote(meta.get_field(name).column) for name in _STORED)
    placeholders = ", ".join(["%s"] * len(_STORED))
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
