"""The receipt inbox, as status callbacks have their outbox: a receipt (or received text) is
stored raw and answered (`receipt_take`, one insert), and the inbox drain is asked for once that
commits; the drain (`receipts_drain`) claims stored receipts a batch at a time, applies them
(`receipts.services.receipts_apply`: status receipts as one change of the status module) and
writes each one's outcome in the same transaction.

**One waiting request.** Asking for the drain takes a slot, a cache entry made with `add` (so only
one request gets it) that lives as long as a task's lease: while it is held, asking queues
nothing, since the running drain looks once more after giving its slot back. So a thousand
receipts a second queue a handful of tasks, not a thousand. A process that has just asked (and
found the slot held, or taken it) does not ask again for `REQUEST_MEMO_SECONDS`: after giving
its slot back the drain goes on looking for that long (`receipts.tasks.drain_receipts`), so a
receipt whose request was skipped is committed before its last look. Most receipts cost no cache
round trip at all.

**Capacity of its own.** The drain is queued on the receipts' own queue
(`settings.RECEIPT_QUEUE`), which a thread of each `manage.py qcluster` master serves
(`notifyproject.cluster.QueueThread`), never behind the delivery or callback drains that hold
the workers (docs/receipts.md).

**Never stalled, never lost.** A receipt that can't be applied is marked `failed` with why, alone
(`receipts_apply`); after `Receipt.MAX_ATTEMPTS` it is `given-up` and no schedule tries it again.
A crash anywhere (the web process after its insert, the broker, the drain's worker) leaves
receipts stored `received`: the per-minute sweep (`receipts.tasks.sweep_receipts`) asks for the
drain again, with no command. `manage.py replay_receipts`, the scheduled replay of failed
receipts and the console's replay are this same drain over the receipts they choose.
"""

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from notifyproject.broker import TASK_LEASE, broker_handle
from receipts.models import Receipt, ReceiptState
from receipts.parsers import ReceiptInvalid, StatusReceipt, receipt_parser
from receipts.services import Applied, receipt_report, receipts_apply
from sending.text_rules import UNSTORABLE, field_fit

logger = logging.getLogger(__name__)

# Receipts a drain claims and applies at once (one transaction, one change of the status module).
DRAIN_BATCH = 100
_SLOT_KEY = "receipt-drain"
# How long a process that asked for the drain skips asking again; the drain waits as long after
# giving its slot back before it looks once more (`receipts.tasks.drain_receipts`).
REQUEST_MEMO_SECONDS = 0.25
clock = time.monotonic  # a seam: tests move time
_asked_at: float | None = None  # when this process last found the slot held or took it


def receipt_body_text(body: bytes) -> str:
    """The body as stored: text (PostgreSQL text can't hold NUL or bytes that are not UTF-8,
    which become U+FFFD). Parsers read this text, so the drain sees exactly what they saw."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def receipt_store(
    *,
    provider: str,
    body: str,
    content_type: str,
    state: ReceiptState = ReceiptState.RECEIVED,
    outcome: str = "",
) -> Receipt:
    return Receipt.objects.create(
        provider=provider,
        body=body,
        content_type=field_fit(Receipt, "content_type", content_type),
        state=state,
        outcome=field_fit(Receipt, "outcome", outcome),
        processed_at=None if state == ReceiptState.RECEIVED else timezone.now(),
    )


def _receipt_insert(*, provider: str, body: str, content_type: str) -> None:
    """`receipt_store` of a receipt `received`, as one plain INSERT: the ORM's model and query
    building were a third of the post's CPU, and the post needs no id back."""
    sql, defaults = _insert_statement()
    values = {
        "provider": provider,
        "body": body,
        "content_type": field_fit(Receipt, "content_type", content_type),
        "received_at": connection.ops.adapt_datetimefield_value(timezone.now()),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, {**defaults, **values})


@functools.cache
def _insert_statement() -> tuple[str, dict]:
    """Every column but the id, from the model (a field added later gets its default), and the
    values of those the post does not set, ready for the database."""
    fields = [f for f in Receipt._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(f"%({f.attname})s" for f in fields)
    table = quote(Receipt._meta.db_table)
    set_here = {"provider", "body", "content_type", "received_at"}
    defaults = {
        f.attname: f.get_db_prep_save(f.get_default(), connection)
        for f in fields
        if f.attname not in set_here
    }
    defaults["state"] = ReceiptState.RECEIVED.value
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})", defaults  # noqa: S608


def receipt_take(
    *, provider: str, body: bytes, content_type: str, simulated: bool = False
) -> list[str]:
    """A receipt as a provider posted it: read enough to answer (contract section 6), stored raw
    in one insert, and the inbox drain asked for once committed. Returns the messages the
    provider is answered with (400); none means 200.

    A receipt that can't be used is stored `rejected`. One whose reading failed for another
    reason (an SNS certificate that could not be fetched) is stored all the same, for the drain
    to read again. One naming a status not in the map is stored, applied by the drain as
    `technical-failure`, and answered 400 with why.

    A `simulated` receipt (a test key's, made in-process: `receipts.simulated`) is not SNS's:
    its SNS envelope goes unchecked, so it is applied at once, here, by the same drain, and not
    left for a drain that would read it as a posted one."""
    text = receipt_body_text(body)
    try:
        parser = receipt_parser(provider, simulated=simulated, quiet=True)
        event = parser.parse(body=text, content_type=content_type)
    except ReceiptInvalid as err:
        receipt = receipt_store(
            provider=provider,
            body=text,
            content_type=content_type,
            state=ReceiptState.REJECTED,
            outcome="; ".join(err.messages),
        )
        logger.warning(
            "receipt rejected",
            extra={"provider": provider, "receipt_id": receipt.pk, "problems": err.messages},
        )
        return err.messages
    except Exception:  # read again by the drain, which records why if it fails there too
        logger.warning("receipt not read: stored for the drain", extra={"provider": provider})
        event = None
    if simulated:
        receipt = receipt_store(provider=provider, body=text, content_type=content_type)
        receipts_drain(receipts=Receipt.objects.filter(pk=receipt.pk), simulated=True)
    else:
        _receipt_insert(provider=provider, body=text, content_type=content_type)
        transaction.on_commit(receipt_drain_request)
    return list(event.problems) if isinstance(event, StatusReceipt) else []


def receipts_waiting() -> QuerySet[Receipt]:
    """What the inbox drain works on: receipts stored and not yet applied."""
    return Receipt.objects.filter(state=ReceiptState.RECEIVED)


def receipt_drain_request(*, again: bool = False) -> bool:
    """Make sure a drain is on its way: queue one unless one is already (the slot is held). True
    when one was queued. Within `REQUEST_MEMO_SECONDS` of this process's last asking it does
    nothing (unless `again`: the drain's own last look, the sweep). Never raises: the receipt is
    safe in the database, and the per-minute sweep asks again."""
    global _asked_at
    now = clock()
    if not again and _asked_at is not None and now - _asked_at < REQUEST_MEMO_SECONDS:
        return False
    try:
        if not cache.add(_SLOT_KEY, 1, timeout=int(TASK_LEASE.total_seconds())):
            _asked_at = now  # held at some moment after `now`: its drain looks after now + memo
            return False
        try:
            async_task(
                "receipts.tasks.drain_receipts",
                task_name="receipts-drain",
                broker=broker_handle(settings.RECEIPT_QUEUE),
                save=False,  # each receipt's outcome is on its row
            )
        except Exception:
            receipt_drain_slot_free()
            raise
        _asked_at = now
        return True
    except Exception:
        logger.exception("receipt drain not queued")
    return False


def receipt_drain_slot_free() -> None:
    cache.delete(_SLOT_KEY)


def receipt_drain_memo_forget() -> None:
    """This process asks at the next receipt (tests: each starts with no memory of the last)."""
    global _asked_at
    _asked_at = None


def receipts_drain(
    *,
    receipts: QuerySet[Receipt],
    batch: int = DRAIN_BATCH,
    progress: Callable[[int], None] | None = None,
    simulated: bool = False,
    until: float | None = None,
    walk_once: bool = True,
) -> Counter:
    """Apply `receipts` (a selection: those waiting, those failed, those an operator chose), a
    batch at a time, oldest first, until none is left; returns how many ended in each state.
    Each batch is claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so drains running at once
    take different receipts; SQLite has one writer at a time), applied and marked in one
    transaction: a receipt is applied with its outcome written, or not at all. With `until` (a
    `time.monotonic()`), no batch is started after it, so a drain under steady load ends long
    before django-q would kill it, and the next one takes over.

    A selection an applied receipt may stay in (a replay of the rejected ones) is walked once,
    by time received (`walk_once`). Receipts waiting all leave their selection when applied, so
    the inbox drain (`walk_once=False`) claims the oldest waiting each time: a receipt stamped
    before the last batch's but committed after it is taken at the next batch, not left until
    a steady stream of younger ones ends."""
    states: Counter = Counter()
    after = None
    while until is None or time.monotonic() < until:
        with transaction.atomic():
            claimed = _receipts_claim(receipts, after=after, batch=batch)
            if not claimed:
                return states
            applied = receipts_apply(claimed, simulated=simulated)
            _receipts_mark(claimed, applied)
        for receipt in claimed:
            receipt_report(receipt, applied[receipt.pk])
            states[applied[receipt.pk].state] += 1
        if walk_once:
            after = (claimed[-1].received_at, claimed[-1].pk)
        if progress is not None:
            progress(len(claimed))
    return states


def _receipts_claim(receipts: QuerySet[Receipt], *, after, batch: int) -> list[Receipt]:
    """The next batch after the last one (by time received, then id: a replayed receipt that
    stays in the selection, such as one rejected again, is not taken twice)."""
    if after is not None:
        at, pk = after
        receipts = receipts.filter(Q(received_at__gt=at) | Q(received_at=at, pk__gt=pk))
    skip_locked = connection.features.has_select_for_update_skip_locked
    claimed = receipts.select_for_update(skip_locked=skip_locked).order_by("received_at", "id")
    return list(claimed[:batch])


def _receipts_mark(receipts: list[Receipt], applied: dict[int, Applied]) -> None:
    """Each receipt's outcome, in one statement: its state, why, and what it named; one that
    failed `Receipt.MAX_ATTEMPTS` times is given up (logged at ERROR)."""
    at = timezone.now()
    for receipt in receipts:
        result = applied[receipt.pk]
        receipt.attempts += 1
        state, outcome = result.state, result.outcome
        if state == ReceiptState.FAILED and receipt.attempts >= Receipt.MAX_ATTEMPTS:
            state = ReceiptState.GIVEN_UP
            outcome = f"given up after {receipt.attempts} attempts: {outcome}"
            logger.error(
                "receipt given up",
                extra={
                    "provider": receipt.provider,
                    "receipt_id": receipt.pk,
                    "attempts": receipt.attempts,
                },
            )
        receipt.state, receipt.processed_at = state, at
        receipt.outcome = _storable(outcome, "outcome")
        if result.event is not None:
            receipt.reference = _storable(result.event.reference, "reference")
            receipt.reported_at = getattr(result.event, "reported_at", None)
    Receipt.objects.bulk_update(
        receipts, ["state", "outcome", "processed_at", "reference", "reported_at", "attempts"]
    )


def _storable(text: str, name: str) -> str:
    return field_fit(Receipt, name, UNSTORABLE.sub("\ufffd", text))
