"""The Django Q schedules the service needs; created idempotently by a migration and by
`manage.py setup_schedules` (safe to run on every deploy)."""

SCHEDULES = [
    # name, task, minutes between runs
    ("queue due retries", "sending.tasks.queue_due_retries", 1),
    ("check slow delivery", "sending.tasks.check_slow_delivery", 1),
    ("tend back provider priorities", "sending.tasks.tend_back_priorities", 5),
    ("replay stranded notifications", "sending.tasks.replay_notifications", 1),
    ("replay failed receipts", "receipts.tasks.replay_receipts", 15),
    ("drain stranded receipts", "receipts.tasks.sweep_receipts", 1),
    ("send due status callbacks", "webhooks.tasks.queue_due_callbacks", 1),
    ("time out notifications", "sending.tasks.timeout_notifications", 24 * 60),
    ("sweep expired idempotency keys", "sending.tasks.sweep_idempotency_keys", 60),
]


def schedules_ensure(schedule_model) -> list[str]:
    """Create or correct each schedule by name; returns the names created."""
    created = []
    for name, func, minutes in SCHEDULES:
        _, made = schedule_model.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": "I",  # Schedule.MINUTES
                "minutes": minutes,
                "repeats": -1,
            },
        )
        if made:
            created.append(name)
    return created
