"""What our Django Q clusters add to django-q2's: `manage.py qcluster` runs the status callbacks'
cluster beside the delivery cluster and serves the receipts' queue from a thread of its own, and
every process dies with the qcluster master.

**Two clusters, one command.** django-q2 reads its configuration once per process, so the
callbacks cluster (its own queue and workers, `settings.CALLBACK_QUEUE`) is a second
`manage.py qcluster`, started by the first as its child with `CALLBACKS_CLUSTER_ENV` set, stopped
(SIGINT) when the delivery cluster stops and started again if it exits on its own. It runs in a
session of its own, so a Ctrl-C in a terminal reaches it only through its parent, which is then
stopping and does not start it again.

**The receipts' queue, served by the master** (`QueueThread`, `settings.RECEIPT_QUEUE`). The
receipt drain is short and asked for once at a time, but it must not wait: on the delivery
cluster's workers it waited 4–5 s behind delivery drains (each holds its worker for up to half the
task timeout), and on the callbacks cluster's it would wait behind slow service endpoints. A
cluster of its own would cost a master, a sentinel, a pusher and a monitor for one worker (tens
of MB); the qcluster master is idle once its cluster has started (it only waits for the
sentinel), so one thread there takes the queue's tasks and runs them, one at a time. What it
gives up is django-q's timeout: a receipt drain bounds itself (`until`). A crash of the master
takes the thread with it; what it was applying rolls back and stays stored, for the sweep.

django-q2's process tree is master (`manage.py qcluster`) → sentinel → workers, pusher, monitor.
When the master is SIGKILLed nobody tells the others: the sentinel goes on guarding, the pusher
goes on taking tasks from the broker and the workers go on sending, outside any supervisor's view
(a restarted master then runs a second set beside them).

Each process of the tree asks the kernel (Linux `prctl(PR_SET_PDEATHSIG)`) for SIGKILL the moment
its parent dies, so the death of the master takes the sentinel with it, and the sentinel's takes
its children: within milliseconds, whatever supervises the master (systemd, supervisord, a shell,
a container). SIGKILL rather than SIGTERM because that is the crash the delivery pipeline is built
to recover from anyway (a claim whose lease runs out, a provider call whose outcome is unknown),
and it cannot be caught half-way by a handler inherited from the master. The request is made in
an at-fork hook, so it covers every process django-q forks, reincarnated ones too.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
CALLBACKS_CLUSTER_ENV = "Q_CALLBACKS_CLUSTER"
# A callbacks cluster that exited on its own is started again after this pause.
RESTART_PAUSE_SECONDS = 5
STOP_WAIT_SECONDS = 30

_forking_pid: int | None = None


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _parent_death_signal_request() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _after_fork_in_child() -> None:
    _parent_death_signal_request()
    # The parent may have died between the fork and the prctl: then no signal will come.
    if os.getppid() != _forking_pid:
        os._exit(1)


def orphan_guard_install() -> None:
    """From now on, every process this one forks (and they fork) dies with its parent."""
    if not _linux():
        logger.warning("qcluster orphan guard unavailable", extra={"platform": sys.platform})
        return
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class CallbacksCluster:
    """The callbacks cluster as a child process, kept running until `stop`.

    The child is started and waited for by one thread, which lives as long as the child: the
    kernel's parent-death signal follows the thread that started it."""

    def __init__(self, *, cwd: str) -> None:
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="callbacks-cluster", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _spawn(self) -> subprocess.Popen | None:
        with self.lock:
            if self.stopping.is_set():
                return None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "qcluster"],
                cwd=self.cwd,
                env={**os.environ, CALLBACKS_CLUSTER_ENV: "true"},
                start_new_session=True,
                preexec_fn=_parent_death_signal_request if _linux() else None,  # noqa: PLW1509
            )
            return self.process

    def _run(self) -> None:
        while (process := self._spawn()) is not None:
            code = process.wait()
            if self.stopping.is_set():
                return
            logger.error("callbacks cluster exited, starting it again", extra={"exit_code": code})
            self.stopping.wait(RESTART_PAUSE_SECONDS)

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            # SIGINT, as for the delivery cluster: django-q2 can hang on SIGTERM.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.thread.is_alive():
            self.thread.join()


def _linux() -> bool:
    return sys.platform.startswith("linux")


class QueueThread:
    """One thread that takes the tasks of `queue` from the broker and runs them in this process,
    one at a time, until `stop`: django-q's pusher and worker in one loop, for a queue whose
    tasks are short, bound themselves, and must never wait for a worker.

    Started after the cluster's sentinel has been forked, so no fork copies it mid-task; its
    database connection is its own (Django's are per thread), closed when old as a worker's is.
    """

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"queue-{queue}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        from django_q.brokers import get_broker

        broker = get_broker(self.queue)
        while not self.stopping.is_set():
            try:
                for task_id, payload in broker.dequeue() or ():
                    self._task_run(payload)
                    broker.acknowledge(task_id)
            except Exception:  # the broker or the database away: try again shortly
                logger.exception("queue thread failed", extra={"queue": self.queue})
                self.stopping.wait(RESTART_PAUSE_SECONDS)

    def _task_run(self, payload) -> None:
        from django.db import close_old_connections
        from django.utils.module_loading import import_string
        from django_q.signing import BadSignature, SignedPackage

        try:
            task = SignedPackage.loads(payload)
        except BadSignature:
            logger.error("queue thread: task not readable", extra={"queue": self.queue})
            return
        name = task["func"]
        started = time.monotonic()
        close_old_connections()
        try:
            func = import_string(name) if isinstance(name, str) else name
            func(*task.get("args", ()), **task.get("kwargs", {}))
        except Exception:  # logged and dropped, as a worker's failed task: the sweeps ask again
            logger.exception("queue thread: task failed", extra={"queue": self.queue, "func": name})
        finally:
            close_old_connections()
        logger.debug(
            "queue thread: task done",
            extra={"queue": self.queue, "func": name, "seconds": time.monotonic() - started},
        )

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(STOP_WAIT_SECONDS)
