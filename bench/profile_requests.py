"""Where a request's CPU goes: cProfile over N requests through the WSGI application in
one process (no HTTP, no gunicorn), on PostgreSQL + Redis with the benchmark's settings.

    .venv/bin/python bench/profile_requests.py                     # create SMS, 500 requests
    .venv/bin/python bench/profile_requests.py --target same-work  # its same-work view
    .venv/bin/python bench/profile_requests.py --target receipt    # a Firetext receipt
    .venv/bin/python bench/profile_requests.py --target v2         # POST /v2/notifications/sms

It prints CPU ms per request measured without a profiler (process time, so the waits on
PostgreSQL and Redis are left out), then cProfile's figures timed by process CPU time (so
they too leave the waits out; the profiler roughly doubles them), by cumulative time. The
database is dropped and made again (its name must contain "bench"); the Redis queue is purged
before and after.
"""

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.api_v2_create import TEMPLATE_BODY, v2_body, v2_token  # noqa: E402
from bench.common import (  # noqa: E402
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    django_setup,
    manage,
    queue_purge,
    run,
)

BODY = b'{"phone_number": "07700 900123", "content": "Your security code is 123456", "reference": "bench"}'  # noqa: E501


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("profile"))
    parser.add_argument("--redis-url", default=bench_redis_url(11))
    parser.add_argument("--cluster-name", default="notify-bench-profile")
    parser.add_argument(
        "--target", choices=("create", "same-work", "receipt", "receipt-same-work", "v2"),
        default="create",
    )  # fmt: skip
    parser.add_argument(
        "--idempotency-key", action="store_true", help="a new Idempotency-Key on every create"
    )
    parser.add_argument("-n", "--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--top", type=int, default=45, help="functions shown")
    return parser.parse_args()


def environ(path: str, body: bytes, content_type: str, api_key: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }


def main() -> int:
    args = parse_args()
    env = base_env(
        args.database_url,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=args.cluster_name,
        API_RATE_LIMIT="100000000/sec",
        LOG_LEVEL="INFO",
    )
    env.pop("CALLBACK_BASIC_AUTH", None)
    database_recreate(args.database_url)
    manage(env, "migrate", "--verbosity", "0")
    api_key = manage(env, "create_api_key", "Benchmark service").strip().splitlines()[-1]
    template_id = manage(env, "create_template", "Benchmark service", "--type", "sms", "--name",
                         "Code", "--body", TEMPLATE_BODY).strip().splitlines()[-1]  # fmt: skip
    django_setup(env)
    queue_purge(args.redis_url, args.cluster_name)
    import logging

    from django.utils import timezone

    from bench.baselines import CREATE_PATH, RECEIPT_PATH, application
    from sending.models import Notification, NotificationStatus, SendAttempt, Service

    sink = open("/dev/null", "w")  # noqa: SIM115 - the log lines are made, not shown
    for handler in logging.getLogger().handlers:
        handler.setStream(sink)
    app = application()
    service = Service.objects.get()
    receipts = args.target.startswith("receipt")
    if receipts:
        ids = [uuid.uuid4() for _ in range(args.requests + args.warmup)]
        Notification.objects.bulk_create(
            Notification(
                id=i, service=service, notification_type="sms", recipient="447700900123",
                content="Benchmark", status=NotificationStatus.SENDING, sent_by="firetext",
            )
            for i in ids
        )  # fmt: skip
        SendAttempt.objects.bulk_create(  # receipts apply only to what Firetext was called for
            SendAttempt(notification_id=i, provider="firetext", started_at=timezone.now(),
                        outcome=SendAttempt.Outcome.SUCCESS)
            for i in ids
        )  # fmt: skip
    path = {
        "create": "/notifications/sms",
        "same-work": CREATE_PATH,
        "receipt": "/notifications/sms/firetext",
        "receipt-same-work": RECEIPT_PATH,
        "v2": "/v2/notifications/sms",
    }[args.target]
    v2_request = v2_body(template_id)

    def one(number: int) -> None:
        if receipts:
            body = (
                f"mobile=447700900123&status=0&time=2026-11-28+14%3A17%3A00&reference={ids[number]}"
            )
            request = environ(path, body.encode(), "application/x-www-form-urlencoded", api_key)
        elif args.target == "v2":  # a token signed now, as a client signs each request's
            request = environ(path, v2_request, "application/json", v2_token(api_key))
        else:
            request = environ(path, BODY, "application/json", api_key)
            if args.idempotency_key:
                request["HTTP_IDEMPOTENCY_KEY"] = f"bench-{number}-{uuid.uuid4()}"
        status = []
        chunks = app(request, lambda s, h: status.append(s))
        b"".join(chunks)
        if not status[0].startswith("20"):
            raise SystemExit(
                f"{path} answered {status[0]}: {json.dumps(b''.join(chunks).decode())}"
            )

    for number in range(args.warmup):
        one(number)
    half = args.warmup + args.requests // 2
    started_cpu, started = time.process_time(), time.perf_counter()
    for number in range(args.warmup, half):
        one(number)
    measured = half - args.warmup
    cpu = (time.process_time() - started_cpu) * 1000 / measured
    wall = (time.perf_counter() - started) * 1000 / measured
    print(f"{args.target} {path}: {cpu:.2f} ms CPU and {wall:.2f} ms wall per request "
          f"({measured} requests, no profiler)")  # fmt: skip
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for number in range(half, args.warmup + args.requests):
        one(number)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(f"cProfile over {args.warmup + args.requests - half} requests, CPU seconds:")
    print(out.getvalue())
    queue_purge(args.redis_url, args.cluster_name)
    return 0


if __name__ == "__main__":
    run(main)
