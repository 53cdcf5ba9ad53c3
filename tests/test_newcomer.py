"""A newcomer's first ten minutes, on a clean clone of this commit: the README's quick start run as
printed, in a terminal with nothing set (no DEBUG, no SECRET_KEY, no DATABASE_URL), and
`make run` started a second and a third time over the same checkout.

The clone is of the committed HEAD (uncommitted changes are not in it). By default its `.venv`
is a venv without pip whose packages are this test run's own (a `.pth` file), with the install
stamps made, so `make run` installs nothing: a full install would take most of a minute per
test. `NEWCOMER_INSTALL=real` makes the clone install its own `.venv` through `make` as a new
user's would (`.ci/run` runs this module once that way)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

REAL_INSTALL = os.environ.get("NEWCOMER_INSTALL") == "real"
BANNER_END = "Press Ctrl-C to stop."
# What a fresh terminal has; everything else (DEBUG, SECRET_KEY, DATABASE_URL, REDIS_URL, …) is
# left behind.
TERMINAL_VARIABLES = ("HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "PIP_INDEX_URL")


def fresh_terminal_env(**extra: str) -> dict[str, str]:
    """The environment of a new terminal at the clone's root: PATH without this run's venv."""
    env = {name: os.environ[name] for name in TERMINAL_VARIABLES if name in os.environ}
    env["PATH"] = os.pathsep.join(
        part
        for part in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if not part.startswith(sys.prefix)
    )
    env.update(extra)
    return env


def clone_make(destination: Path) -> Path:
    """A clean clone of HEAD, its `.venv` borrowed from this run unless NEWCOMER_INSTALL=real."""
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(destination)], check=True
    )
    subprocess.run(["git", "-C", str(destination), "checkout", "--quiet", head], check=True)
    if not REAL_INSTALL:
        venv = destination / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = Path(sysconfig.get_path("purelib", vars={"base": str(venv)}))
        (site / "newcomer-test.pth").write_text(sysconfig.get_path("purelib") + "\n")
        for stamp in (".runtime", ".dev"):
            (venv / "bin" / stamp).touch()
    return destination


@pytest.fixture
def clone(tmp_path) -> Path:
    return clone_make(tmp_path / "notify")


class LocalRun:
    """One `make run` (or any command that prints the banner and keeps running) in a terminal."""

    def __init__(self, *, cwd: Path, command: str, env: dict[str, str]):
        self.log = cwd / f"terminal-{time.monotonic_ns()}.log"
        self.web = f"http://127.0.0.1:{env['WEB_PORT']}"
        self.fake = f"http://127.0.0.1:{env['FAKE_PORT']}"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def banner_wait(self, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while BANNER_END not in (text := self.log.read_text(errors="replace")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no banner; the terminal showed:\n{text}")
            time.sleep(0.5)
        return text

    def stop(self) -> None:
        """Ctrl-C, as the banner says; what is left after 60 s is killed."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


SETTLED = ("delivered", "permanent-failure", "temporary-failure")


def ports_free_wait(*ports: str, seconds: float = 60) -> None:
    """A stopped run's processes may take a moment to let go of their ports: the next run, on the
    same ports, refuses to start while anything still answers there."""
    deadline = time.monotonic() + seconds
    for port in ports:
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", int(port))) != 0:
                    break
            time.sleep(0.2)


@contextmanager
def local_run(clone: Path, command: str, **env: str) -> Iterator[tuple[LocalRun, str]]:
    ports_free_wait(*(env[name] for name in ("WEB_PORT", "FAKE_PORT") if name in env))
    run = LocalRun(cwd=clone, command=command, env=fresh_terminal_env(**env))
    try:
        yield run, run.banner_wait(600 if REAL_INSTALL else 180)
    finally:
        run.stop()


def ports() -> dict[str, str]:
    return {"WEB_PORT": str(free_port()), "FAKE_PORT": str(free_port())}


def quick_start_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the README's Quick start, in order."""
    section = readme.split("\n## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def in_terminal(command: str, *, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=fresh_terminal_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def banner_key(banner: str) -> str:
    return re.search(r"Authorization: Bearer (\S+)'", banner).group(1)


def banner_command(banner: str, first_line: str) -> str:
    """The command the banner prints under `first_line`, its lines joined as a shell joins them."""
    lines = banner.split(first_line + "\n", 1)[1].splitlines()
    command = []
    for line in lines:
        command.append(line.strip())
        if not line.endswith("\\"):
            break
    return "\n".join(command)


def test_readme_quick_start_works_as_printed_in_a_fresh_terminal(clone):
    """The quick start's first block starts the service; every later block, pasted into another
    fresh terminal (with this test's ports for 8000 and 8100), succeeds; so does every
    manage.py line the banner prints; and the banner's curl line sends a text that is
    delivered."""
    readme = (clone / "README.md").read_text()
    start, *others = quick_start_blocks(readme)
    env = ports()
    with local_run(clone, start, **env) as (run, banner):
        for block in others:
            block = block.replace("127.0.0.1:8000", run.web.removeprefix("http://"))
            block = block.replace("127.0.0.1:8100", run.fake.removeprefix("http://"))
            done = in_terminal(block, cwd=clone)
            assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"

        manage_lines = [line.strip() for line in banner.splitlines() if "manage.py" in line]
        assert manage_lines
        for line in manage_lines:
            done = in_terminal(line, cwd=clone)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"

        sent = in_terminal(banner_command(banner, "Send a text:"), cwd=clone)
        notification = json.loads(sent.stdout)
        assert notification["status"] == "created", sent.stdout
        key = banner_key(banner)
        deadline = time.monotonic() + 120
        while True:
            answer = requests.get(
                f"{run.web}/notifications/{notification['id']}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            if answer.json()["status"] in SETTLED or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # The fakes deliver most texts and fail a few on purpose (as the README says): what the
        # newcomer must see is the text handed over and settled by the provider's receipt.
        assert answer.json()["status"] in SETTLED, answer.json()
        assert answer.json()["sent_by"] in ("firetext", "mmg")


def test_a_restart_keeps_the_key_and_the_users_callback(clone):
    """The key the first run made works after restarts, the local callback's signing secret still
    verifies, and a callback the user set between runs is kept."""
    env = ports()
    command = "bash scripts/run-local.sh"
    with local_run(clone, command, **env) as (run, banner):
        key = banner_key(banner)

    with local_run(clone, command, **env) as (run, banner):
        assert banner_key(banner) == key
        key_file = clone / "run" / "api-key"
        assert key_file.read_text().strip() == key
        assert key_file.stat().st_mode & 0o777 == 0o600
        auth = {"Authorization": f"Bearer {key}"}
        sent = requests.post(
            f"{run.web}/notifications/sms",
            json={"phone_number": "07700 900123", "content": "After a restart"},
            headers=auth,
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        deadline = time.monotonic() + 120
        while not (got := requests.get(f"{run.fake}/_callbacks", timeout=10).json()["callbacks"]):
            assert time.monotonic() < deadline, "no status callback reached the fake receiver"
            time.sleep(0.5)
        assert [c["signature"] for c in got] == ["valid"]

        mine = "http://127.0.0.1:9/my-receiver"
        put = requests.put(
            f"{run.web}/service/callback",
            json={"url": mine, "bearer_token": "my-receiver-token"},
            headers=auth,
            timeout=10,
        )
        assert put.status_code == 200, put.text

    with local_run(clone, command, **env) as (run, banner):
        assert banner_key(banner) == key
        answer = requests.get(f"{run.web}/service/callback", headers=auth, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["url"] == mine
