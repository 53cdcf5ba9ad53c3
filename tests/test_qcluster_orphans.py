"""A real `manage.py qcluster` whose master is SIGKILLed: its sentinel, workers, pusher and
monitor must stop too (django-q2 alone leaves them running, taking tasks), and so must the
callbacks cluster it started, with all of its own."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WORKERS = 2
CALLBACK_WORKERS = 1
# Each cluster: sentinel + workers + pusher + monitor; the callbacks cluster's master too.
CLUSTER_PROCESSES = (1 + WORKERS + 2) + 1 + (1 + CALLBACK_WORKERS + 2)


def parents() -> dict[int, int]:
    """Every live (not zombie) process's parent, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            found[int(entry.name)] = int(ppid)
    return found


def descendants(pid: int) -> set[int]:
    tree = parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier}
        found |= frontier
    return found


def poll(check, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard uses Linux prctl")
def test_sigkill_of_the_master_stops_every_process_of_the_cluster_within_10_seconds():
    log = tempfile.NamedTemporaryFile(prefix="orphans-qcluster-", suffix=".log", delete=False)
    env = subprocess_env(
        Q_WORKERS=str(WORKERS),
        CALLBACK_WORKERS=str(CALLBACK_WORKERS),
        Q_CLUSTER_NAME=f"orphans-{os.getpid()}",
    )
    master = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children: set[int] = set()
    try:
        children = poll(
            lambda: found if len(found := descendants(master.pid)) >= CLUSTER_PROCESSES else None,
            timeout=60,
            what=f"the cluster's processes\n{Path(log.name).read_text()[-3000:]}",
        )
        master.send_signal(signal.SIGKILL)
        master.wait(timeout=5)

        # Generous for a loaded machine: what matters is that they go by themselves.
        poll(lambda: not (children & parents().keys()), timeout=30, what="the children to exit")
    finally:
        for pid in children & parents().keys():
            os.kill(pid, signal.SIGKILL)
        if master.poll() is None:
            master.kill()
