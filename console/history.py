"""Every mend an operator makes from the console (retry now, mark failed, replay, send again, a
priority move) is written to the object's admin history, who and why, so the object's History
page and a notification's timeline both show it."""

from collections.abc import Iterable

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType


def mend_record(*, request, objects: Iterable, what: str, reason: str = "") -> None:
    """One history line per object: `what` the operator did and, when given, why."""
    objects = list(objects)
    if not objects:
        return
    message = f"{what}: {reason}" if reason else what
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=objects,
        action_flag=CHANGE,
        change_message=message[:2000],
    )


def mends_of(obj) -> list[LogEntry]:
    """The history lines of one object, oldest first (the timeline's operator changes)."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    rows = LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
    return list(rows.select_related("user").order_by("action_time", "id"))
