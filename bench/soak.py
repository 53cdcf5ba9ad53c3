"""Fault soak: notifications through the API while providers fail, a qcluster is SIGKILLed, the
web server restarts and receipts come twice and out of order; then checks that nothing was lost
or sent twice.

    .venv/bin/python bench/soak.py                    # make soak: 5,000 notifications
    .venv/bin/python bench/soak.py --short            # CI: 300 notifications, one kill

PostgreSQL and Redis (a database of its own, recreated: its name must contain `bench`), two
qclusters, gunicorn and the fake providers injecting HTTP 5xx, timeouts and slow answers. Timers
are short (retry delay, hold after an unknown outcome, replay margin) so the run ends in minutes.
Exits 1 when a check fails, 2 when the run itself went wrong. See docs/delivery.md, Soak.
"""

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    BenchError,
    base_env,
    bench_database_url,
    bench_redis_url,
    database_recreate,
    django_setup,
    free_port,
    manage,
    process_stop,
    queue_purge,
    run,
)

# Every notification reaches a provider within 5 min of recovery: a provider call made for it
# since the event (a refusal then leaves it to the retry plan, whose tail is printed beside).
EVENT_LIMIT_SECONDS = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI form: 300 notifications, a kill")
    parser.add_argument("--count", type=int, help="notifications (5,000; 300 with --short)")
    parser.add_argument("--rate", type=float, default=25.0, help="API requests per second")
    parser.add_argument("--email-share", type=float, default=0.2)
    parser.add_argument("--database-url", default=bench_database_url("soak"))
    parser.add_argument("--redis-url", default=bench_redis_url(14))
    parser.add_argument("--cluster-name", default="notify-soak")
    parser.add_argument("--workers", type=int, default=4, help="workers per qcluster")
    parser.add_argument("--settle", type=float, default=600, help="seconds to wait at the end")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    args.count = args.count or (300 if args.short else 5000)
    return args


def http(method: str, url: str, body: dict | None = None, headers=None, timeout: float = 10):
    """(status, JSON answer); raises OSError when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")[:200]


# --- the processes ----------------------------------------------------------------------------


class Stack:
    """Each process in its own session; a qcluster's whole tree dies with its master."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env, self.logdir = env, logdir
        self.web_port, self.fake_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.fake_url = f"http://127.0.0.1:{self.fake_port}"
        self.web: subprocess.Popen | None = None
        self.fake: subprocess.Popen | None = None
        self.clusters: list[subprocess.Popen | None] = [None, None]
        self.started = Counter()

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        self.started[name] += 1
        log = self.logdir / f"{name}-{self.started[name]}.log"
        with log.open("w") as out:
            return subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def fake_start(self, args) -> None:
        self.fake = self._start("fakes", [
            sys.executable, "manage.py", "runfakeproviders", "--port", str(self.fake_port),
            "--receipts-to", self.web_url, "--receipt-delay", "1",
            "--error-rate", "0.2", "--timeout-rate", "0.05", "--timeout-seconds", "3",
            "--slow-rate", "0.1", "--slow-seconds", "0.5", "--duplicate-rate", "0.1",
            "--outcomes", "delivered=80,permanent-failure=4,temporary-failure=4,"
            "pending-then-delivered=10,no-receipt=2",
            "--seed", str(args.seed),
            # Each kept-alive connection of the engine's pools (per worker, per provider) holds
            # one of the fakes' threads, as a real provider's front end would not: with too few,
            # a call waits unserved past its timeout and the fake then takes it all the same.
            "--threads", "512",
        ])  # fmt: skip
        self._wait(lambda: http("GET", f"{self.fake_url}/_control")[0] == 200, "fake providers")

    def web_start(self) -> None:
        self.web = self._start("web", [
            sys.executable, "-m", "gunicorn", "notifyproject.wsgi:application",
            "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2", "--timeout", "60",
        ])  # fmt: skip
        self._wait(lambda: http("GET", f"{self.web_url}/livez")[0] == 200, "the web server")

    def web_restart(self) -> None:
        process_stop(self.web, timeout=30)
        self.web_start()

    def cluster_start(self, n: int) -> None:
        self.clusters[n] = self._start(f"qcluster{n}", [sys.executable, "manage.py", "qcluster"])

    def cluster_kill(self, n: int) -> None:
        """SIGKILL to the master alone: its processes follow it (notifyproject/cluster.py)."""
        self.clusters[n].send_signal(signal.SIGKILL)
        self.clusters[n].wait(timeout=10)

    def _wait(self, check, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(OSError):
                if check():
                    return
            time.sleep(0.2)
        raise BenchError(f"{what} did not answer within {timeout:.0f} s (logs: {self.logdir})")

    def stop(self) -> None:
        for process in [*self.clusters, self.web, self.fake]:
            process_stop(process, timeout=30)


def environment(args) -> dict[str, str]:
    return base_env(
        args.database_url,
        DJANGO_SETTINGS_MODULE="notifyproject.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        REDIS_URL=args.redis_url,
        Q_CLUSTER_NAME=args.cluster_name,
        Q_WORKERS=str(args.workers),
        Q_TASK_TIMEOUT_SECONDS="20",
        Q_RETRY_SECONDS="40",
        LOG_LEVEL="WARNING",
        API_RATE_LIMIT="100000/min",
        FIRETEXT_API_KEY="soak",
        MMG_API_KEY="soak",
        AWS_ACCESS_KEY_ID="soak",
        AWS_SECRET_ACCESS_KEY="soak",
        AWS_MAX_ATTEMPTS="1",
        SNS_VERIFY_SIGNATURES="false",
        PROVIDER_TIMEOUT_SECONDS="2",
        SMS_RETRY_DELAY_SECONDS="5",
        EMAIL_RETRY_DELAY_SECONDS="5",
        SMS_MAX_RETRIES="20",
        EMAIL_MAX_RETRIES="20",
        SEND_UNKNOWN_OUTCOME_HOLD_SECONDS="30",
        REPLAY_MARGIN_SECONDS="20",
    )


# --- the run ------------------------------------------------------------------------------------


class Sender:
    """POSTs notifications at a steady rate from a few threads; a refused or cut connection (the
    web server restarting) is tried again with the same Idempotency-Key, so a request that was
    taken but not answered is not accepted twice; an HTTP answer is never tried again."""

    def __init__(self, stack: Stack, key: str, args):
        self.stack, self.args = stack, args
        self.headers = {"Authorization": f"Bearer {key}"}
        self.answers: Counter = Counter()
        self.refused = 0
        self.ids: dict[str, str] = {}  # id → sms | email
        self.lock = threading.Lock()

    def one(self, n: int) -> None:
        email = (n * self.args.email_share) % 1 + self.args.email_share >= 1
        path, body = (
            ("email", {"email_address": f"soak{n}@example.com", "subject": "Soak", "content": "x"})
            if email
            else ("sms", {"phone_number": f"07700 9{n % 100000:05d}", "content": f"Soak {n}"})
        )
        while True:
            try:
                headers = {**self.headers, "Idempotency-Key": f"soak-{n}"}
                status, answer = http(
                    "POST", f"{self.stack.web_url}/notifications/{path}", body, headers
                )
                break
            except OSError:
                with self.lock:
                    self.refused += 1
                time.sleep(0.5)
        with self.lock:
            self.answers[status] += 1
            if status == 201:
                self.ids[answer["id"]] = path

    def run(self, schedule: list) -> None:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for n in range(self.args.count):
                while schedule and time.monotonic() - start >= schedule[0][0]:
                    schedule.pop(0)[1]()
                pause = start + n / self.args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(self.one, n)
        for _, action in schedule:
            action()


class Events:
    """What the run did to the system, when, and when it had recovered from each."""

    def __init__(self):
        self.done: list[dict] = []

    def mark(self, name: str) -> dict:
        from django.utils import timezone

        event = {"name": name, "at": timezone.now(), "recovered_after": None}
        self.done.append(event)
        print(f"  {time.strftime('%H:%M:%S')} {name}", flush=True)
        return event


def stranded_before(moment) -> int:
    """`created` notifications accepted before `moment` that no provider call has been made for
    since: the ones recovery has still to find. One whose last call has an unknown outcome counts
    as found (it waits the hold); one a provider refused since then is in the retry plan."""
    from sending.models import Notification, NotificationStatus, SendAttempt

    return (
        Notification.objects.filter(status=NotificationStatus.CREATED, created_at__lt=moment)
        .exclude(attempts__outcome=SendAttempt.Outcome.STARTED)
        .exclude(attempts__started_at__gte=moment)
        .count()
    )


def created_before(moment) -> int:
    """`created` notifications accepted before `moment`, retries included."""
    from sending.models import Notification, NotificationStatus

    return Notification.objects.filter(
        status=NotificationStatus.CREATED, created_at__lt=moment
    ).count()


def watch_recovery(events: Events, stop_event: threading.Event) -> None:
    from django.db import connection
    from django.utils import timezone

    while not stop_event.wait(2):
        for event in events.done:
            since = (timezone.now() - event["at"]).total_seconds()
            if event["recovered_after"] is None and not stranded_before(event["at"]):
                event["recovered_after"] = since
            if event["recovered_after"] is not None and event.get("drained_after") is None:
                if not created_before(event["at"]):
                    event["drained_after"] = since
    connection.close()


def in_flight(count: int, *, timeout: float) -> None:
    """Wait (a while at most) until `count` provider calls are under way."""
    from sending.models import SendAttempt

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if SendAttempt.objects.filter(outcome=SendAttempt.Outcome.STARTED).count() >= count:
            return
        time.sleep(0.05)


def plan(args, stack: Stack, events: Events) -> list:
    """(seconds after the start, action) in order; the full soak spreads its faults over the
    sending time, the short one kills a qcluster once."""
    duration = args.count / args.rate

    def control(provider, down, name):
        def act():
            http("POST", f"{stack.fake_url}/_control", {"provider": provider, "down": down})
            if not down:
                events.mark(name)

        return act

    def kill():
        in_flight(2, timeout=15)  # so that the kill is likely to cut a provider call short
        stack.cluster_kill(0)
        print(f"  {time.strftime('%H:%M:%S')} qcluster 0 SIGKILLed", flush=True)

    def restart():
        stack.cluster_start(0)
        events.mark("qcluster 0 started again after SIGKILL")

    def web():
        stack.web_restart()
        events.mark("web server restarted")

    if args.short:
        return [(duration * 0.3, kill), (duration * 0.3 + 5, restart)]
    return sorted(
        [
            (duration * 0.1, control("firetext", True, "")),
            (duration * 0.1 + 60, control("firetext", False, "firetext back after 60 s down")),
            (duration * 0.1 + 70, control("mmg", True, "")),
            (duration * 0.1 + 130, control("mmg", False, "mmg back after 60 s down")),
            (duration * 0.5, kill),
            (duration * 0.5 + 10, restart),
            (duration * 0.7, web),
        ],
        key=lambda item: item[0],
    )


def settle(args) -> bool:
    """Wait until nothing is `created` and the receipts have come; True when it got there."""
    from sending.models import Notification, NotificationStatus

    deadline = time.monotonic() + args.settle
    while time.monotonic() < deadline:
        if not Notification.objects.filter(status=NotificationStatus.CREATED).exists():
            time.sleep(10)  # the last receipts (delay 1 s, pending then delivered 2 s)
            return True
        time.sleep(3)
    return False


def late_receipts(stack: Stack, sender: Sender) -> Counter:
    """Out of order: a Firetext `pending` for texts already final, as a slow network would
    deliver it; none may change anything."""
    from sending.models import IN_FLIGHT_STATUSES, Notification

    final = Notification.objects.filter(sent_by="firetext").exclude(status__in=IN_FLIGHT_STATUSES)
    answers = Counter()
    for notification in final.only("id", "recipient")[:200]:
        body = (
            f"mobile={notification.recipient}&status=2&time=2026-01-01+00%3A00%3A00"
            f"&reference={notification.id}&code=102"
        ).encode()
        request = urllib.request.Request(
            f"{stack.web_url}/notifications/sms/firetext", data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answers[response.status] += 1
        except urllib.error.HTTPError as err:
            answers[err.code] += 1
    return answers


# --- the checks ---------------------------------------------------------------------------------


def explain(ids, requests, receipts) -> None:
    """What happened to a few notifications a check failed on, for whoever reads the output."""
    from sending.models import Notification

    for notification_id in ids:
        row = Notification.objects.get(id=notification_id)
        attempts = [
            f"{a.provider}:{a.outcome}:{a.status_code or ''}"
            for a in row.attempts.order_by("started_at", "id")
        ]
        calls = [
            f"{r['provider']}:{r['fault'] or 'ok'}:{r['outcome']}"
            for r in requests
            if r["reference"] == notification_id
        ]
        posted = [
            f"{r['status']}→{r.get('answer')}"
            for r in receipts
            if r["reference"] == notification_id
        ]
        print(f"    {notification_id} {row.status}", flush=True)
        print(f"      attempts {attempts} calls {calls} receipts {posted}", flush=True)


def checks(args, stack: Stack, sender: Sender, events: Events, settled: bool, late) -> bool:
    from django.db.models import Count

    from sending.models import FAILURE_STATUSES, Notification, NotificationStatus, SendAttempt

    ok = True

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok &= passed
        print(f"  [{'ok' if passed else 'FAILED'}] {text}", flush=True)

    print("results:", flush=True)
    ids = set(sender.ids)
    statuses = Counter(
        Notification.objects.filter(id__in=ids).values_list("status", flat=True).iterator()
    )
    print(f"  statuses: {dict(statuses)}", flush=True)
    check(settled, "the run settled (nothing `created`) before --settle ran out")
    check(
        len(ids) == args.count,
        f"{len(ids)} of {args.count} accepted (answers {dict(sender.answers)},"
        f" {sender.refused} refused connections retried while the web server restarted)",
    )

    # Every notification final, or `sending`/`pending` with a reason we can name: a `pending` one
    # waits for its final receipt as a `sending` one waits for its first (the 72-hour time-out
    # settles both).
    receipts = http("GET", f"{stack.fake_url}/_receipts", timeout=60)[1]["posted"]
    requests = http("GET", f"{stack.fake_url}/_requests", timeout=60)[1]["requests"]
    # An SES send names no reference and its receipts name SES's message id: the recipient (one
    # address per notification here) says which notification a send was.
    by_recipient = {
        recipient: str(notification_id)
        for notification_id, recipient in Notification.objects.filter(id__in=ids).values_list(
            "id", "recipient"
        )
    }
    for r in requests:
        if r["provider"] == "ses":
            r["reference"] = by_recipient.get(r["to"])
    by_provider_reference = {r["provider_reference"]: r["reference"] for r in requests}
    for r in receipts:
        if r["reference"] not in ids:
            r["reference"] = by_provider_reference.get(r["reference"])
    no_receipt = {r["reference"] for r in requests if r["outcome"] == "no-receipt"}
    dropped = {r["reference"] for r in receipts if not str(r.get("answer", "")).isdigit()}
    waiting = (NotificationStatus.SENDING, NotificationStatus.PENDING)
    sending = set(
        map(str, Notification.objects.filter(id__in=ids, status__in=waiting)
            .values_list("id", flat=True))
    )  # fmt: skip
    unexplained = sending - no_receipt - dropped
    final = {NotificationStatus.DELIVERED, *FAILURE_STATUSES}
    stuck = {s: n for s, n in statuses.items() if s not in final and s not in waiting}
    check(
        not stuck and not unexplained,
        f"every notification final or `sending`/`pending` with a reason"
        f" ({len(sending & no_receipt)} no receipt by design, {len(sending & dropped)} receipt"
        f" posted while the web server was down; not final: {stuck}, unexplained: "
        f"{len(unexplained)})",
    )

    explain(sorted(unexplained)[:5], requests, receipts)

    # Sent twice: a provider accepted the same id more than once.
    accepted = Counter(r["reference"] for r in requests if r["fault"] in (None, "slow"))
    unknown = Counter(
        map(str, SendAttempt.objects.filter(outcome=SendAttempt.Outcome.UNKNOWN)
            .values_list("notification_id", flat=True))
    )  # fmt: skip
    twice = {ref: n for ref, n in accepted.items() if n - 1 > unknown[ref]}
    resends = sum(unknown.values())
    sends = len(requests)
    check(not twice, f"no id accepted by a provider twice beyond resends ({len(twice)} were)")
    explain(sorted(twice)[:5], requests, receipts)
    print(
        f"  resends after an unknown outcome: {resends} ({1000 * resends / max(sends, 1):.2f}"
        f" per 1,000 provider calls, {sends} calls); of them reached a provider twice:"
        f" {sum(1 for ref in unknown if accepted[ref] > 1)}",
        flush=True,
    )

    # Statistics against a recomputation.
    rebuilt = manage(stack.env, "rebuild_statistics")
    corrected = re.search(r"corrected (\d+)\.\s*$", rebuilt)
    check(
        corrected is not None and corrected.group(1) == "0",
        f"daily statistics equal a recomputation ({rebuilt.strip().splitlines()[-1]})",
    )

    # No HTTP 500 anywhere: the API, the receipts the fakes posted, our late ones.
    receipt_answers = Counter(str(r.get("answer")) for r in receipts)
    server_errors = sum(n for s, n in sender.answers.items() if s >= 500) + sum(
        n for s, n in receipt_answers.items() if s.startswith("5")
    )
    check(
        server_errors == 0 and all(s < 500 for s in late),
        f"no HTTP 5xx answered (API {dict(sender.answers)}, receipts {dict(receipt_answers)},"
        f" late out-of-order receipts {dict(late)})",
    )

    texts = Notification.objects.filter(id__in=ids, notification_type="sms")
    failed_over = (
        texts.annotate(providers=Count("attempts__provider", distinct=True))
        .filter(providers__gt=1)
        .count()
    )
    print(
        f"  texts that failed over: {failed_over} of {texts.count()}"
        f" ({100 * failed_over / max(texts.count(), 1):.1f} %)",
        flush=True,
    )
    for event in events.done:
        after = event["recovered_after"]
        check(
            after is not None and after <= EVENT_LIMIT_SECONDS,
            f"recovered {event['name']}: "
            + (f"{after:.0f} s" if after is not None else "never")
            + f" (limit {EVENT_LIMIT_SECONDS} s)",
        )
        drained = event.get("drained_after")
        print(
            "       and nothing from before it left `created` (the retry plan's tail too): "
            + (f"{drained:.0f} s" if drained is not None else "not by the end"),
            flush=True,
        )
    return ok


def main() -> int:
    args = parse_args()
    database_recreate(args.database_url)
    env = environment(args)
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "setup_schedules")
    key = manage(env, "create_api_key", "Soak").strip().splitlines()[-1]
    django_setup(env)
    queue_purge(args.redis_url, args.cluster_name)
    logdir = Path(tempfile.mkdtemp(prefix="soak-"))
    stack = Stack(env, logdir)
    env.update(
        FIRETEXT_URL=f"{stack.fake_url}/firetext",
        MMG_URL=f"{stack.fake_url}/mmg",
        AWS_ENDPOINT_URL_SESV2=stack.fake_url,
    )
    events = Events()
    stop_watching = threading.Event()
    print(f"soak: {args.count} notifications at {args.rate:g}/s, logs in {logdir}", flush=True)
    started = time.monotonic()
    try:
        stack.fake_start(args)
        stack.web_start()
        stack.cluster_start(0)
        stack.cluster_start(1)
        watcher = threading.Thread(target=watch_recovery, args=(events, stop_watching))
        watcher.start()
        sender = Sender(stack, key, args)
        sender.run(plan(args, stack, events))
        print(f"  {time.strftime('%H:%M:%S')} all sent; waiting to settle", flush=True)
        settled = settle(args)
        late = late_receipts(stack, sender)
        time.sleep(3)
        stop_watching.set()
        watcher.join()
        ok = checks(args, stack, sender, events, settled, late)
    finally:
        stop_watching.set()
        stack.stop()
    print(f"soak {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    run(main)
