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
    """
    stored = _stored(service=service, key=key)
    if stored is not None:
        return _replay(stored, request_hash)
    try:
        with transaction.atomic():
            if not _claim(service=service, key=key):
                raise IdempotencyInProgress()
            status, body = create()
            if status < 400:  # a refusal does not take the key
                IdempotencyKey.objects.create(
                    service=service,
                    key=key,
                    request_hash=request_hash,
                    status_code=status,
                    response_body=body,
                    created_at=now(),
                )
    except IntegrityError:
        # Another request with this key committed first; ours rolled back whole.
        stored = _stored(service=service, key=key)
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


def _stored(*, service: Service, key: str) -> IdempotencyKey | None:
    """The key's row while it is kept; an expired one (not swept yet) is deleted here, so the
    key can be used afresh."""
    row = IdempotencyKey.objects.filter(service=service, key=key).first()
    if row is None:
        return None
    if row.created_at >= now() - KEPT_FOR:
        return row
    IdempotencyKey.objects.filter(id=row.id, created_at=row.created_at).delete()
    return None


def _replay(stored: IdempotencyKey, request_hash: str) -> IdempotentAnswer:
    if stored.request_hash != request_hash:
        raise IdempotencyMismatch()
    return IdempotentAnswer(status=stored.status_code, body=stored.response_body, replayed=True)


def _claim(*, service: Service, key: str) -> bool:
    """Take the key for this transaction, or answer False when another transaction has it."""
    if connection.vendor != "postgresql":
        return True
    digest = hashlib.sha256(f"{service.id}\0{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return cursor.fetchone()[0]
