"""What our Django Q cluster adds to django-q2's: its processes die with the qcluster master.

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
import sys

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_forking_pid: int | None = None


def _before_fork() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _after_fork_in_child() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between the fork and the prctl: then no signal will come.
    if os.getppid() != _forking_pid:
        os._exit(1)


def orphan_guard_install() -> None:
    """From now on, every process this one forks (and they fork) dies with its parent."""
    if not sys.platform.startswith("linux"):
        logger.warning("qcluster orphan guard unavailable", extra={"platform": sys.platform})
        return
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
