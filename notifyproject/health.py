"""Liveness and readiness for load balancers and operators."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_q.brokers import get_broker

from notifyproject.broker import tasks_unreadable
from sending.selectors import delivery_drains_read, notification_backlog

logger = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def livez(request):
    """Answers without touching anything: the process is up (and the benchmarks' bare view)."""
    return JsonResponse({"status": "ok"})


# Waiting notifications are counted up to this (a count of a deep backlog costs its length).
DRAIN_COUNT_CAP = 10_000


def _age(moment) -> float | None:
    return None if moment is None else round((timezone.now() - moment).total_seconds(), 1)


def _degraded(checks: dict) -> list[str]:
    """Why delivery is behind, from the figures in `checks` (nothing when it keeps up)."""
    reasons = []
    created, claim = checks["oldest_created_seconds"], checks["oldest_claim_seconds"]
    unreadable = checks["last_unreadable_task_seconds"]
    if created is not None and created > settings.HEALTH_CREATED_AGE_LIMIT_SECONDS:
        reasons.append(
            f"oldest created notification is {created:.0f} s old"
            f" (limit {settings.HEALTH_CREATED_AGE_LIMIT_SECONDS} s)"
        )
    if claim is not None and claim > settings.HEALTH_UNSETTLED_CLAIM_LIMIT_SECONDS:
        reasons.append(
            f"a claim has had no outcome for {claim:.0f} s"
            f" (limit {settings.HEALTH_UNSETTLED_CLAIM_LIMIT_SECONDS} s)"
        )
    if unreadable is not None and unreadable < settings.HEALTH_UNREADABLE_TASK_WINDOW_SECONDS:
        reasons.append(
            f"workers could not read a task {unreadable:.0f} s ago (is SECRET_KEY the same?)"
        )
    return reasons


def _deliveries() -> dict:
    """Each channel's drain (waiting, capped at `DRAIN_COUNT_CAP`; the oldest's age) and the
    provider calls in flight."""
    channels, in_flight = delivery_drains_read(cap=DRAIN_COUNT_CAP)
    return {
        "waiting": {drain.channel: drain.waiting for drain in channels},
        "oldest_waiting_seconds": {
            drain.channel: _age(drain.oldest_queued_at) for drain in channels
        },
        "in_flight": {calls.provider: calls.calls for calls in in_flight},
    }


def healthz(request):
    """200 when the database and the broker answer and delivery keeps up; 503 naming the part
    that doesn't answer (`unavailable`) or why delivery is behind (`degraded`)."""
    checks, failing = {}, []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        checks.update(notification_backlog().ages(timezone.now()))
        checks["deliveries"] = _deliveries()
    except Exception as err:
        logger.error("health check failed", extra={"component": "database", "error": repr(err)})
        checks["database"], failing = "unavailable", [*failing, "database"]
    try:
        checks["queued_tasks"] = get_broker().queue_size()
        # The count lives in the cache: Redis beside the broker, or the database without it.
        count, last = tasks_unreadable()
        checks["unreadable_tasks"] = count
        checks["last_unreadable_task_seconds"] = _age(last)
        checks["broker"] = "ok"
    except Exception as err:
        logger.error("health check failed", extra={"component": "broker", "error": repr(err)})
        checks["broker"], failing = "unavailable", [*failing, "broker"]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing, **checks}, status=503)
    if degraded := _degraded(checks):
        logger.warning("health degraded", extra={"reasons": "; ".join(degraded)})
        return JsonResponse({"status": "degraded", "degraded": degraded, **checks}, status=503)
    return JsonResponse({"status": "ok", **checks})
