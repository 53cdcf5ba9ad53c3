"""SES through boto3 `sesv2`: not plain HTTP, so it stands on the provider base
(`ProviderClient`: metrics, log line, settings key) beside the HTTP SMS base, not on it.

Timing: `request-time` is the whole call; `raw-request-time` runs from the first attempt's
botocore `request-created` to the last `response-received`, as the contract (section 8) names
them: it covers signing, the wire and botocore's own retries with their back-off, but not
validating and serialising the call or checking the answer.
"""

import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.parsers import ResponseParserError
from django.conf import settings

from sending.clients.base import ProviderClient, excerpt
from sending.clients.exceptions import (
    EmailClientException,
    EmailClientNonRetryableException,
    EmailClientThrottlingException,
)


class _WireTimes(threading.local):
    """Per-thread start and end of the wire time of the call in progress."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None


class SesClient(ProviderClient):
    name = "ses"
    settings_names = ("SES_FROM_ADDRESS", "AWS_REGION", "PROVIDER_TIMEOUT_SECONDS")
    # boto3 reads these itself when the client is made.
    environment_names = (
        "AWS_ENDPOINT_URL_SESV2",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SES",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_MAX_ATTEMPTS",
    )

    # SES error codes: sending again later may help with these ...
    throttling_codes = frozenset(
        {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
    )
    # ... and never with these (the message itself or our setup is wrong).
    non_retryable_codes = frozenset(
        {
            "InvalidParameterValue",
            "BadRequestException",
            "MessageRejected",
            "MailFromDomainNotVerifiedException",
            "NotFoundException",
        }
    )

    def __init__(
        self,
        *,
        from_address: str,
        region: str,
        timeout: float,
        endpoint_url: str | None = None,
    ):
        super().__init__()
        self.from_address = from_address
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # Attempts: botocore's default (3) unless AWS_MAX_ATTEMPTS says otherwise.
            retries={"mode": "standard"},
            # A kept-alive connection for each call the delivery engine has in flight.
            max_pool_connections=settings.DELIVERY_CONCURRENCY,
        )
        self.client = boto3.client(
            "sesv2", region_name=region, config=config, endpoint_url=endpoint_url
        )
        self._wire = _WireTimes()
        events = self.client.meta.events
        events.register("request-created.sesv2.SendEmail", self._on_attempt_start)
        events.register("response-received.sesv2.SendEmail", self._on_response_received)

    @classmethod
    def from_settings(cls) -> "SesClient":
        return cls(
            from_address=settings.SES_FROM_ADDRESS,
            region=settings.AWS_REGION,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
            endpoint_url=_legacy_endpoint_url(),
        )

    @classmethod
    def settings_key(cls) -> tuple:
        return (*super().settings_key(), *(os.environ.get(n) for n in cls.environment_names))

    def send_email(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        reference: str,
        reply_to: str | None = None,
        unsubscribe_url: str | None = None,
    ) -> str:
        """Send one email; `reply_to` its Reply-To, `unsubscribe_url` its one-click
        List-Unsubscribe (RFC 8058)."""
        start = time.perf_counter()
        self._wire.start = self._wire.end = None
        try:
            message_id = self._send(
                to=to,
                subject=subject,
                body=body,
                reply_to=reply_to,
                unsubscribe_url=unsubscribe_url,
            )
        except EmailClientException as err:
            self._record(time.perf_counter() - start, reference=reference, error=err)
            raise
        self._record(time.perf_counter() - start, reference=reference)
        return message_id

    def _send(
        self, *, to: str, subject: str, body: str, reply_to: str | None, unsubscribe_url: str | None
    ) -> str:
        simple: dict[str, Any] = {
            # Without a charset SES assumes 7-bit ASCII.
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
        }
        extra: dict[str, Any] = {"ReplyToAddresses": [reply_to]} if reply_to else {}
        if unsubscribe_url:
            simple["Headers"] = [
                {"Name": "List-Unsubscribe", "Value": f"<{unsubscribe_url}>"},
                {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            ]
        try:
            answer = self.client.send_email(
                FromEmailAddress=self.from_address,
                Destination={"ToAddresses": [to]},
                Content={"Simple": simple},
                **extra,
            )
        except ClientError as err:
            raise self._client_error(err) from err
        except (ConnectTimeoutError, ReadTimeoutError) as err:
            raise EmailClientException(self.name, 504, "Gateway timeout") from err
        except (BotoCoreError, ResponseParserError) as err:
            raise EmailClientException(
                self.name, None, excerpt(f"{type(err).__name__}: {err}")
            ) from err
        message_id = answer.get("MessageId")
        if not message_id:
            status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise EmailClientException(self.name, status, "answer has no MessageId")
        return message_id

    def _client_error(self, err: ClientError) -> EmailClientException:
        error = err.response.get("Error", {})
        code = error.get("Code") or "Unknown"
        text = error.get("Message")
        message = f"{code}: {text}" if text else code
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in self.throttling_codes:
            return EmailClientThrottlingException(self.name, status, message)
        if code in self.non_retryable_codes:
            return EmailClientNonRetryableException(self.name, status, message)
        return EmailClientException(self.name, status, message)

    def _on_attempt_start(self, **kwargs: Any) -> None:
        if self._wire.start is None:
            self._wire.start = time.perf_counter()

    def _on_response_received(self, **kwargs: Any) -> None:
        self._wire.end = time.perf_counter()

    def _record(
        self, duration: float, *, reference: str, error: EmailClientException | None = None
    ) -> None:
        # The wire: the first attempt's request-created to the last response-received.
        wire_start, wire_end = self._wire.start, self._wire.end
        raw = wire_end - wire_start if wire_start is not None and wire_end is not None else None
        super()._record(duration, reference=reference, raw_duration=raw, error=error)


def _legacy_endpoint_url() -> str | None:
    """boto3 finds AWS_ENDPOINT_URL_SESV2 and AWS_ENDPOINT_URL itself; AWS_ENDPOINT_URL_SES is
    SES v1's variable, which the configuration also promises, so pass it on for `sesv2`."""
    if os.environ.get("AWS_ENDPOINT_URL_SESV2"):
        return None
    return os.environ.get("AWS_ENDPOINT_URL_SES") or None
