"""Contract section 10 over real processes. "Fair": two services whose callback endpoints answer
slowly (2 s, inside the timeout) with a backlog of callbacks, and a third service whose texts
still reach the provider promptly and whose callbacks still arrive promptly. "The first retry
comes 10 to 20 s after the failure, not at the next minute."

One `manage.py qcluster` (the delivery cluster and the callbacks cluster it starts), the web
server, the fake providers posting receipts back at once, and real callback receivers."""

import time

import pytest
import requests

from fakes import Behaviour
from sending.models import Service
from tests.conftest import free_port
from tests.fakes import running_fake_providers
from tests.pipeline.test_end_to_end import api_key, running, send_text, wait_for
from tests.webhooks.conftest import BEARER_TOKEN, Answer, Receiver
from webhooks.services import service_callback_set

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SLOW_ANSWER_SECONDS = 2.0
BACKLOG = 30  # texts per slow service: a minute of callbacks each, one at a time
# Generous for a loaded two-core machine; with the callbacks on the deliveries' workers, the
# third service's texts waited 27-45 s and its callbacks 15-47 s.
PROMPT_SECONDS = 10.0


def service_with_callback(name: str, receiver: Receiver) -> tuple[Service, dict[str, str]]:
    service = Service.objects.create(name=name)
    service_callback_set(service=service, url=receiver.url, bearer_token=BEARER_TOKEN)
    return service, api_key(service)


def backlog_send(stack, headers) -> None:
    items = [{"phone_number": "07700 900123", "content": f"Hello {n}"} for n in range(BACKLOG)]
    response = requests.post(
        f"{stack.web}/notifications/sms/batch",
        json={"notifications": items},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text


def sent_to_provider(fake, notification_id: str) -> bool:
    return any(r["reference"] == notification_id for r in fake.requests())


def callback_for(receiver: Receiver, notification_id: str) -> float | None:
    for request in list(receiver.received):
        if notification_id.encode() in request.body:
            return request.at
    return None


def test_slow_neighbours_delay_neither_a_third_services_texts_nor_its_callbacks(insecure):
    slow = [Receiver(), Receiver()]
    prompt = Receiver()
    for receiver in slow:
        receiver.default = Answer(delay=SLOW_ANSWER_SECONDS)
    web_port = free_port()
    behaviour = Behaviour(receipt_delay=0.0, outcomes={"delivered": 100.0})
    try:
        neighbours = [service_with_callback(f"Slow {n}", r) for n, r in enumerate(slow)]
        _, headers = service_with_callback("Prompt service", prompt)
        with (
            running_fake_providers(
                receipts_to=f"http://127.0.0.1:{web_port}", behaviour=behaviour
            ) as fake,
            running(fake, web_port=web_port, SERVICE_CALLBACK_ALLOW_INSECURE="true") as stack,
        ):
            for _, neighbour_headers in neighbours:
                backlog_send(stack, neighbour_headers)
            # The slow services' texts are all sent (deliveries waiting behind deliveries are not
            # the point here) and both slow endpoints are busy before the third service sends.
            wait_for(
                lambda: len(fake.requests()) >= 2 * BACKLOG and all(r.received for r in slow),
                what="the slow services' texts sent and their callbacks under way",
                stack=stack,
            )

            for _ in range(3):
                accepted = time.monotonic()
                notification_id = send_text(stack, headers)
                wait_for(
                    lambda: sent_to_provider(fake, notification_id),  # noqa: B023
                    what="the third service's text at the provider",
                    timeout=PROMPT_SECONDS,
                    stack=stack,
                )
                at_provider = time.monotonic() - accepted
                arrived = wait_for(
                    lambda: callback_for(prompt, notification_id),  # noqa: B023
                    what="the third service's callback",
                    timeout=PROMPT_SECONDS,
                    stack=stack,
                )
                assert at_provider < PROMPT_SECONDS
                assert arrived - accepted < PROMPT_SECONDS
            # The slow services were still waiting for theirs all along.
            assert all(len(r.received) < BACKLOG for r in slow)
    finally:
        for receiver in [*slow, prompt]:
            receiver.stop()


def test_the_first_retry_comes_10_to_20_s_after_the_failure(insecure):
    receiver = Receiver()
    receiver.answer(Answer(503))
    web_port = free_port()
    behaviour = Behaviour(receipt_delay=0.0, outcomes={"delivered": 100.0})
    try:
        _, headers = service_with_callback("Failing once", receiver)
        with (
            running_fake_providers(
                receipts_to=f"http://127.0.0.1:{web_port}", behaviour=behaviour
            ) as fake,
            running(fake, web_port=web_port, SERVICE_CALLBACK_ALLOW_INSECURE="true") as stack,
        ):
            send_text(stack, headers)
            wait_for(lambda: len(receiver.received) >= 2, what="the retry", timeout=90, stack=stack)
        first, retry = receiver.received[:2]
        assert first.headers["webhook-id"] == retry.headers["webhook-id"]
        assert 10 <= retry.at - first.at <= 20
    finally:
        receiver.stop()
