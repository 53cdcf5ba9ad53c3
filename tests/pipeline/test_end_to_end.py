"""The delivery pipeline over real processes: the web server, Django Q clusters and the fake
providers, talking real HTTP. Slower than the rest; each test starts its own processes."""

import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.db import connection
from django_q.brokers import get_broker
from django_q.tasks import async_task

from sending.models import ApiKey
from sending.services import notification_create, notification_queue_delivery
from tests.conftest import REPO_ROOT, free_port, subprocess_env
from tests.fakes import fake_providers  # noqa: F401  (fixture)
from tests.pipeline.conftest import prefer
from tests.stats.factories import notification_make

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Stack:
    def __init__(self, fake, **env):
        self.fake = fake
        defaults = {
            "FIRETEXT_URL": f"{fake.url}/firetext",
            "MMG_URL": f"{fake.url}/mmg",
            "FIRETEXT_API_KEY": "firetext-key",
            "MMG_API_KEY": "mmg-key",
            "AWS_ENDPOINT_URL_SESV2": fake.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # The contract's 10 s: on a loaded machine a shorter one times out answers the
            # fakes did give, and a timeout fails over (contract section 5): sent twice.
            "PROVIDER_TIMEOUT_SECONDS": "10",
            # Its own queue, so no task left by another test is picked up.
            "Q_CLUSTER_NAME": f"e2e-{uuid.uuid4().hex[:8]}",
            "Q_WORKERS": "2",
            "LOG_LEVEL": "WARNING",
        }
        self.env = subprocess_env(**{**defaults, **env})
        self.processes: list[subprocess.Popen] = []
        self.logs: list[str] = []
        self.web = None

    def start(self, *args: str) -> subprocess.Popen:
        log = tempfile.NamedTemporaryFile(prefix=f"e2e-{args[0]}-", suffix=".log", delete=False)
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        self.logs.append(log.name)
        return process

    def log_tails(self) -> str:
        return "\n".join(f"--- {name}\n{Path(name).read_text()[-3000:]}" for name in self.logs)

    def start_web(self, port: int | None = None) -> str:
        port = port or free_port()
        self.start("runserver", f"127.0.0.1:{port}", "--noreload")
        self.web = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{self.web}/livez", timeout=1).ok, what="web server")
        return self.web

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(check, *, what: str, timeout: float = 45.0, stack: Stack | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{stack.log_tails() if stack else ''}")


@contextmanager
def running(fake, *, clusters: int = 1, web: bool = True, web_port: int | None = None, **env):
    stack = Stack(fake, **env)
    try:
        if web:
            stack.start_web(web_port)
        for _ in range(clusters):
            stack.start("qcluster")
        yield stack
    finally:
        stack.stop()


def api_key(service) -> dict[str, str]:
    _, secret = ApiKey.issue(service)
    return {"Authorization": f"Bearer {secret}"}


def send_text(stack, headers) -> str:
    response = requests.post(
        f"{stack.web}/notifications/sms",
        json={"phone_number": "07700 900123", "content": "Hello"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def status_becomes(stack, headers, notification_id, wanted: set[str]) -> dict:
    def check():
        body = requests.get(
            f"{stack.web}/notifications/{notification_id}", headers=headers, timeout=5
        )
        return body.json() if body.json()["status"] in wanted else None

    return wait_for(check, what=f"status in {wanted}", stack=stack)


def references(fake, provider: str) -> list[str]:
    return [r["reference"] for r in fake.requests(provider)]


def test_a_text_is_accepted_sent_and_shows_who_sent_it(service, fake_providers):  # noqa: F811
    headers = api_key(service)
    with running(fake_providers) as stack:
        notification_id = send_text(stack, headers)
        sent = status_becomes(stack, headers, notification_id, {"sending"})

    assert sent["sent_by"] in {"firetext", "mmg"}
    assert sent["sent_at"] is not None
    assert references(fake_providers, sent["sent_by"]) == [notification_id]


def test_an_email_is_sent_through_ses(service, fake_providers):  # noqa: F811
    headers = api_key(service)
    with running(fake_providers) as stack:
        response = requests.post(
            f"{stack.web}/notifications/email",
            json={"email_address": "someone@example.com", "subject": "Hi", "content": "Body"},
            headers=headers,
            timeout=10,
        )
        sent = status_becomes(stack, headers, response.json()["id"], {"sending"})
    assert sent["sent_by"] == "ses"
    assert len(fake_providers.requests("ses")) == 1


def test_with_firetext_failing_the_text_goes_out_through_mmg(service, fake_providers):  # noqa: F811
    prefer("firetext")
    fake_providers.control(provider="firetext", down=True)
    headers = api_key(service)
    with running(fake_providers) as stack:
        notification_id = send_text(stack, headers)
        sent = status_becomes(stack, headers, notification_id, {"sending"})

    assert sent["sent_by"] == "mmg"
    assert references(fake_providers, "firetext") == [notification_id]
    assert references(fake_providers, "mmg") == [notification_id]


def test_with_both_providers_down_it_retries_then_is_a_technical_failure(service, fake_providers):  # noqa: F811
    fake_providers.control(provider="firetext", down=True)
    fake_providers.control(provider="mmg", down=True)
    headers = api_key(service)
    with running(fake_providers, SMS_RETRY_DELAY_SECONDS="0", SMS_MAX_RETRIES="2") as stack:
        notification_id = send_text(stack, headers)
        failed = status_becomes(stack, headers, notification_id, {"technical-failure"})

    assert failed["sent_by"] is None
    tries = references(fake_providers, "firetext") + references(fake_providers, "mmg")
    assert tries == [notification_id] * 6  # the first run and two retries, two providers each


@pytest.mark.postgres
def test_two_clusters_on_one_redis_broker_send_each_notification_exactly_once(
    service,
    fake_providers,  # noqa: F811
    settings,
):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and the Redis broker (CI's second run)")
    count = 500
    get_broker().purge_queue()
    # The clusters read the queue this test process writes to.
    with running(fake_providers, clusters=2, web=False, Q_CLUSTER_NAME=settings.Q_CLUSTER["name"]):
        notifications = [
            notification_create(
                service=service, notification_type="sms", recipient="447700900123", content="hi"
            )
            for _ in range(count)
        ]
        for notification in notifications:  # a duplicate task for each, as a replay would make
            notification_queue_delivery(notification=notification)
        wait_for(
            lambda: (
                len(fake_providers.requests("firetext")) + len(fake_providers.requests("mmg"))
                >= count
            ),
            what="every notification sent",
            timeout=120,
        )
        # Every duplicate task taken from the broker; stopping the clusters (SIGTERM) lets the
        # workers finish those in their hands, so any duplicate send has reached the fake.
        wait_for(lambda: get_broker().queue_size() == 0, what="every task taken", timeout=120)

    sent = references(fake_providers, "firetext") + references(fake_providers, "mmg")
    assert sorted(sent) == sorted(str(n.id) for n in notifications)


def test_a_receipt_is_applied_while_every_delivery_worker_is_busy(
    service,
    fake_providers,  # noqa: F811
    settings,
    tmp_path,
):
    """The receipt drain has its own queue and its own thread: a delivery drain holding the
    cluster's only worker does not hold a receipt back."""
    sent = notification_make(service=service, called="firetext")
    started, release = tmp_path / "started", tmp_path / "release"
    headers = api_key(service)
    name = settings.Q_CLUSTER["name"]  # the cluster reads the queue this test process writes to
    for queue in (name, settings.RECEIPT_QUEUE):
        get_broker(queue).purge_queue()
    with running(fake_providers, Q_WORKERS="1", Q_CLUSTER_NAME=name) as stack:
        async_task("tests.pipeline.conftest.worker_hold", str(started), str(release))
        wait_for(started.exists, what="the worker held", stack=stack)
        response = requests.post(
            f"{stack.web}/notifications/sms/firetext",
            data={"status": "0", "reference": str(sent.id)},
            timeout=10,
        )
        assert response.json() == {"result": "success"}
        status_becomes(stack, headers, str(sent.id), {"delivered"})
        held = not release.exists()
        release.touch()

    assert held
