"""Liveness and readiness for load balancers and operators."""

import logging

from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_q.brokers import get_broker

from sending.selectors import notification_backlog

logger = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def livez(request):
    """Answers without touching anything: the process is up (and the benchmarks' bare view)."""
    return JsonResponse({"status": "ok"})


def healthz(request):
    """200 when the database and the broker answer; 503 naming the one that doesn't. With the
    ages of the oldest `created` notification and of the oldest unsettled claim (seconds)."""
    checks, failing = {}, []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
        checks.update(notification_backlog().ages(timezone.now()))
    except Exception as err:
        logger.error("health check failed", extra={"component": "database", "error": repr(err)})
        checks["database"], failing = "unavailable", [*failing, "database"]
    try:
        checks["queued_tasks"] = get_broker().queue_size()
        checks["broker"] = "ok"
    except Exception as err:
        logger.error("health check failed", extra={"component": "broker", "error": repr(err)})
        checks["broker"], failing = "unavailable", [*failing, "broker"]
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing, **checks}, status=503)
    return JsonResponse({"status": "ok", **checks})
