"""Where a delivered text's CPU goes in the delivery engine: one drain (`deliveries_drain`) in
this process over N texts already created, the fake providers answering at once, on PostgreSQL
+ Redis with the benchmark's settings (log lines made at INFO, written to /dev/null).

    .venv/bin/python bench/profile_drain.py               # 2,000 texts, then a profiled 2,000
    .venv/bin/python bench/profile_drain.py -n 4000 --top 60

It prints the CPU per text without a profiler (this process's CPU and its PostgreSQL backend's;
no qcluster, no broker), then cProfile's figures timed by each thread's own CPU time: the
drain's thread and the pool threads (each call profiled in its thread, the figures merged), so
a function's time is CPU it used, not time it waited. The profiler roughly doubles the times:
read the shares. The database is dropped and made again (its name must contain "bench").
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root
from bench.common import (  # noqa: E402
    bench_database_url,
    bench_redis_url,
    database_recreate,
    delivery_env,
    django_setup,
    manage,
    queue_purge,
    run,
)
from bench.provider_latency import Processes, fakes_latency, fakes_start  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=bench_database_url("drain"))
    parser.add_argument("--redis-url", default=bench_redis_url(11))
    parser.add_argument("--cluster-name", default="notify-bench-drain")
    parser.add_argument("-n", "--texts", type=int, default=2000)
    parser.add_argument("--top", type=int, default=50, help="functions shown")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (tottime: own)")
    parser.add_argument(
        "--dump", type=Path, help="also write the merged stats here (.drain, .pool)"
    )
    return parser.parse_args()


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    args = parse_args()
    env = delivery_env(args, log_level="INFO")
    database_recreate(args.database_url)
    manage(env, "migrate", "--verbosity", "0")
    processes = Processes(Path(tempfile.mkdtemp(prefix="bench-drain-")))
    try:
        fake_url = fakes_start(processes, env)
        fakes_latency(fake_url, 0.0)
        env.update(FIRETEXT_URL=f"{fake_url}/firetext", MMG_URL=f"{fake_url}/mmg")
        django_setup(env)
        return _measure(args)
    finally:
        processes.stop_all()
        queue_purge(args.redis_url, args.cluster_name)


def _measure(args) -> int:
    import logging

    from django.db import connection

    from bench.delivery_engine import service_new, texts_create
    from sending import engine
    from sending.delivery import deliveries_drain

    sink = open("/dev/null", "w")  # noqa: SIM115 - the log lines are made, not shown
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(sink)

    def one_drain(count: int) -> tuple[float, float, int]:
        service = service_new(f"drain {time.monotonic_ns()}")
        texts_create(service, count)
        queue_purge(args.redis_url, args.cluster_name)
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        cpu, pg = time.process_time(), _backend_cpu(backend)
        sent = deliveries_drain(notification_type="sms")
        return time.process_time() - cpu, _backend_cpu(backend) - pg, sent

    one_drain(200)  # warm: clients, pools, connections
    cpu, pg, sent = one_drain(args.texts)
    print(f"{sent} texts: {cpu * 1000 / sent:.2f} ms CPU a text in this process, "
          f"{pg * 1000 / sent:.2f} ms in its PostgreSQL backend (no profiler)")  # fmt: skip

    # Each pool thread's calls under a profiler of its own, timed by that thread's CPU.
    profilers: list[cProfile.Profile] = []
    local = threading.local()
    call_timed = engine.call_timed

    def call_profiled(call):
        profiler = getattr(local, "profiler", None)
        if profiler is None:
            profiler = local.profiler = cProfile.Profile(time.thread_time)
            profilers.append(profiler)
        profiler.enable()
        try:
            return call_timed(call)
        finally:
            profiler.disable()

    engine.call_timed = call_profiled
    import sending.delivery

    sending.delivery.call_timed = call_profiled
    main_profiler = cProfile.Profile(time.thread_time)
    main_profiler.enable()
    cpu, pg, sent = one_drain(args.texts)
    main_profiler.disable()
    sending.delivery.call_timed = engine.call_timed = call_timed
    for name, group in (("the drain's thread", [main_profiler]), ("the pool threads", profilers)):
        out = io.StringIO()
        stats = pstats.Stats(group[0], stream=out)
        for other in group[1:]:
            stats.add(other)
        if args.dump:
            stats.dump_stats(f"{args.dump}.{'drain' if group[0] is main_profiler else 'pool'}")
        stats.sort_stats(args.sort).print_stats(args.top)
        print(f"cProfile, {name}, over {sent} texts, thread CPU seconds:")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    run(main)
