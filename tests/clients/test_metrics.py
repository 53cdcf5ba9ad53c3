"""The metric lines each client sends, read from a real UDP socket."""

import re
from datetime import datetime

import pytest

from sending.clients import email_client, sms_client
from sending.clients.exceptions import ClientException

TIMING = r"(\d+(\.\d+)?)\|ms"


def parse(lines: list[str]) -> dict[str, str]:
    return dict(line.split(":", 1) for line in lines)


@pytest.mark.parametrize("provider", ["firetext", "mmg"])
def test_a_successful_sms_send_sends_both_timings_and_a_success(fake_clients, statsd, provider):
    sms_client(provider).send_sms(to="447700900123", content="Hi", reference="ref")

    received = parse(statsd.read(3))

    assert set(received) == {
        f"notify.clients.{provider}.request-time",
        f"notify.clients.{provider}.raw-request-time",
        f"notify.clients.{provider}.success",
    }
    assert received[f"notify.clients.{provider}.success"] == "1|c"
    whole = re.fullmatch(TIMING, received[f"notify.clients.{provider}.request-time"])
    wire = re.fullmatch(TIMING, received[f"notify.clients.{provider}.raw-request-time"])
    assert whole and wire
    assert 0 < float(wire.group(1)) <= float(whole.group(1))


def test_a_failed_send_with_an_answer_counts_an_error(fake_clients, statsd):
    fake_clients.control(provider="firetext", error_rate=1)

    with pytest.raises(ClientException):
        sms_client("firetext").send_sms(to="447700900123", content="Hi", reference="ref")

    assert set(parse(statsd.read(3)).items()) >= {("notify.clients.firetext.error", "1|c")}


def test_a_timeout_has_no_wire_time(fake_clients, settings, statsd):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.1
    fake_clients.control(provider="mmg", down=True, mode="timeout")

    with pytest.raises(ClientException):
        sms_client("mmg").send_sms(to="447700900123", content="Hi", reference="ref")

    received = parse(statsd.read(2))
    assert set(received) == {"notify.clients.mmg.request-time", "notify.clients.mmg.error"}
    assert float(re.fullmatch(TIMING, received["notify.clients.mmg.request-time"]).group(1)) >= 100


def test_an_email_send_sends_both_timings_and_a_success(fake_clients, statsd):
    email_client().send_email(to="a@example.com", subject="s", body="b", reference="ref")

    received = parse(statsd.read(3))

    assert received["notify.clients.ses.success"] == "1|c"
    whole = float(re.fullmatch(TIMING, received["notify.clients.ses.request-time"]).group(1))
    wire = float(re.fullmatch(TIMING, received["notify.clients.ses.raw-request-time"]).group(1))
    assert 0 < wire <= whole


def test_email_wire_time_spans_botocores_retries(fake_clients, statsd):
    fake_clients.control(provider="ses", error_rate=1)

    with pytest.raises(ClientException):
        email_client().send_email(to="a@example.com", subject="s", body="b", reference="ref")

    received = parse(statsd.read(3))
    assert received["notify.clients.ses.error"] == "1|c"
    attempts = [datetime.fromisoformat(r["time"]) for r in fake_clients.requests("ses")]
    assert len(attempts) == 3
    whole = float(re.fullmatch(TIMING, received["notify.clients.ses.request-time"]).group(1))
    wire = float(re.fullmatch(TIMING, received["notify.clients.ses.raw-request-time"]).group(1))
    # From the first attempt to the last answer, back-off included (times kept to the ms).
    assert (attempts[-1] - attempts[0]).total_seconds() * 1000 - 1 <= wire <= whole
