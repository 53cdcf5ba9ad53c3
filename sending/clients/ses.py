"""SES through boto3 `sesv2`: not plain HTTP, so it sits beside the SMS base rather than on it.

Timing: `request-time` is the whole call; `raw-request-time` runs from the first attempt's
botocore `request-created` to the last `response-received`, as the contract (section 8) names
them: it covers signing, the wire and botocore's own retries with their back-off, but not
validating and serialising the call or checking the answer.
"""

import logging
import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.parsers import ResponseParserError
from django.conf import settings

from notifyproject import metrics
from sending.clients.base import excerpt
from sending.clients.exceptions import (
    EmailClientException,
    EmailClientNonRetryableException,
    EmailClientThrottlingException,
)

logger = logging.getLogger(__name__)


class _WireTimes(threading.local):
    """Per-thread start and end of the wire time of the call in progress."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None


class SesClient:
    name = "ses"

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
        self.from_address = from_address
        config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # Attempts: botocore's default (3) unless AWS_MAX_ATTEMPTS says otherwise.
            retries={"mode": "standard"},
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

    def send_email(self, *, to: str, subject: str, body: str, reference: str) -> str:
        start = time.perf_counter()
        self._wire.start = self._wire.end = None
        try:
            message_id = self._send(to=to, subject=subject, body=body)
        except EmailClientException as err:
            self._record(time.perf_counter() - start, reference=reference, error=err)
            raise
        self._record(time.perf_counter() - start, reference=reference)
        return message_id

    def _send(self, *, to: str, subject: str, body: str) -> str:
        try:
            answer = self.client.send_email(
                FromEmailAddress=self.from_address,
                Destination={"ToAddresses": [to]},
                Content={
                    "Simple": {
                        # Without a charset SES assumes 7-bit ASCII.
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                    }
                },
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
        metrics.timing(f"clients.{self.name}.request-time", duration)
        extra: dict[str, Any] = {
            "provider": self.name,
            "reference": reference,
            "duration_ms": round(duration * 1000, 2),
        }
        wire_start, wire_end = self._wire.start, self._wire.end
        if wire_start is not None and wire_end is not None:
            metrics.timing(f"clients.{self.name}.raw-request-time", wire_end - wire_start)
            extra["raw_duration_ms"] = round((wire_end - wire_start) * 1000, 2)
        if error is None:
            metrics.incr(f"clients.{self.name}.success")
            logger.info("provider request succeeded", extra=extra)
        else:
            metrics.incr(f"clients.{self.name}.error")
            extra.update(status_code=error.status_code, error=error.message)
            extra["retryable"] = error.retryable
            logger.warning("provider request failed", extra=extra)


def _legacy_endpoint_url() -> str | None:
    """boto3 finds AWS_ENDPOINT_URL_SESV2 and AWS_ENDPOINT_URL itself; AWS_ENDPOINT_URL_SES is
    SES v1's variable, which the configuration also promises, so pass it on for `sesv2`."""
    if os.environ.get("AWS_ENDPOINT_URL_SESV2"):
        return None
    return os.environ.get("AWS_ENDPOINT_URL_SES") or None
