"""Each provider client's own overhead per call: `request-time` minus `raw-request-time`.

The fake providers run in their own process (`manage.py runfakeproviders`, no receipts, no
faults); this process sends through `sms_client("firetext")`, `sms_client("mmg")` and
`email_client()` one call after another, and reads the two timings each call reports from a
real UDP socket standing in for statsd (the metrics path the service uses). Overhead is building
the request, requests/urllib3 (or botocore) around the wire, reading the body and checking the
answer; the wire (`response.elapsed`: send to headers parsed) is left out.

    .venv/bin/python bench/clients_overhead.py [--calls 2000] [--warmup 200]

Target: median overhead under 1 ms per call for Firetext and MMG (SES is reported, no target).
Exit status 0 when met, 1 when missed.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.common import (  # noqa: E402
    ROOT,
    django_setup,
    figure,
    results_arguments,
    results_write,
    spread,
)

TARGET_MS = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per client")
    parser.add_argument("--warmup", type=int, default=200, help="calls before measuring")
    results_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.warmup = 300, 50
    return args


def start_fake_providers() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runfakeproviders", "--port", "0", "--receipts-to", ""],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true", "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        text=True,
    )
    line = [""]
    reader = threading.Thread(target=lambda: line.__setitem__(0, process.stdout.readline()))
    reader.start()
    reader.join(timeout=60)
    if not line[0].startswith("Fake providers listening on "):
        process.kill()
        sys.exit(f"fake providers did not start: {line[0]!r}")
    return process, line[0].split()[-1]


def configure(url: str) -> None:
    """Settings from the environment, as the service reads them, pointed at the fakes."""
    django_setup(
        dict(
            DJANGO_SETTINGS_MODULE="notifyproject.settings",
            DEBUG="true",
            LOG_LEVEL="WARNING",
            FIRETEXT_URL=f"{url}/firetext",
            MMG_URL=f"{url}/mmg",
            FIRETEXT_API_KEY="bench",
            MMG_API_KEY="bench",
            AWS_ENDPOINT_URL_SESV2=url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
    )


def measure(send, statsd: socket.socket, calls: int, warmup: int) -> dict[str, list[float]]:
    """Per measured call: request-time, raw-request-time and their difference (ms)."""
    figures: dict[str, list[float]] = {"request": [], "raw": [], "overhead": [], "cpu": []}
    for number in range(warmup + calls):
        cpu_before = time.process_time()
        send(number)
        cpu = (time.process_time() - cpu_before) * 1000
        lines = dict(statsd.recv(512).decode().split(":", 1) for _ in range(3))
        timings = {
            name.rsplit(".", 1)[-1]: float(value.removesuffix("|ms"))
            for name, value in lines.items()
            if value.endswith("|ms")
        }
        if number >= warmup:
            figures["request"].append(timings["request-time"])
            figures["raw"].append(timings["raw-request-time"])
            figures["overhead"].append(timings["request-time"] - timings["raw-request-time"])
            figures["cpu"].append(cpu)
    return figures


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    args = parse_args()
    fake, url = start_fake_providers()
    try:
        configure(url)
        from notifyproject import metrics
        from sending.clients import email_client, sms_client

        statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(5)
        metrics.configure(host="127.0.0.1", port=statsd.getsockname()[1], prefix="bench")

        def sms(name):
            client = sms_client(name)
            return lambda n: client.send_sms(
                to="447700900123", content="Your code is 123456", reference=f"bench-{n}"
            )

        def email(n):
            email_client().send_email(
                to="someone@example.com", subject="Bench", body="Hello", reference=f"bench-{n}"
            )

        clients = {"firetext": sms("firetext"), "mmg": sms("mmg"), "ses": email}
        print(f"{args.calls} calls per client after {args.warmup} warm-up calls; times in ms")
        print(
            f"{'client':<9} {'overhead median':>16} {'p95':>7} {'request median':>15} "
            f"{'raw median':>11}"
        )
        met, found = True, []
        for name, send in clients.items():
            started = time.perf_counter()
            figures = measure(send, statsd, args.calls, args.warmup)
            overhead = statistics.median(figures["overhead"])
            if name != "ses":
                met = met and overhead < TARGET_MS
            found.append(
                figure(
                    f"{name} client overhead per call (median)",
                    value=spread([overhead]),
                    unit="ms",
                    target=f"< {TARGET_MS:g} ms" if name != "ses" else None,
                    met=overhead < TARGET_MS if name != "ses" else None,
                    note=f"p95 {p95(figures['overhead']):.3f} ms; this process's CPU per whole "
                    f"call (urllib3 reading the answer included) median "
                    f"{statistics.median(figures['cpu']):.3f} ms; request-time median "
                    f"{statistics.median(figures['request']):.3f} ms, {args.calls} calls",
                )
            )
            print(
                f"{name:<9} {overhead:>16.3f} {p95(figures['overhead']):>7.3f} "
                f"{statistics.median(figures['request']):>15.3f} "
                f"{statistics.median(figures['raw']):>11.3f}"
                f"   CPU/call {statistics.median(figures['cpu']):.3f}"
                f"   ({time.perf_counter() - started:.1f} s)"
            )
        verdict = "met" if met else "MISSED"
        print(f"target: Firetext and MMG median overhead under {TARGET_MS} ms: {verdict}")
        results_write(args.json, "clients_overhead", found)
        return 0 if met else 1
    finally:
        fake.send_signal(signal.SIGTERM)
        try:
            fake.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fake.kill()


if __name__ == "__main__":
    sys.exit(main())
