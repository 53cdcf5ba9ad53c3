"""How long ago, to the second: "3 min 07 s", "2 h 05 min", "4 d 3 h"."""

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


def duration_words(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def age(moment: datetime | None, now: datetime | None = None) -> str:
    """`{{ t|age:now }}`: how long before `now` (default: the clock) `moment` was."""
    if moment is None:
        return ""
    return duration_words(((now or timezone.now()) - moment).total_seconds())


@register.filter
def due_in(moment: datetime | None, now: datetime | None = None) -> str:
    """`{{ t|due_in:now }}`: how long after `now` `moment` is ("now" when it has passed)."""
    if moment is None:
        return ""
    seconds = (moment - (now or timezone.now())).total_seconds()
    return "now" if seconds <= 0 else f"in {duration_words(seconds)}"
