"""The small base every provider client stands on, and the HTTP base of the SMS clients.

`ProviderClient` owns what every client shares: its `name`, the metrics (`clients.{name}.…`:
`request-time`, `raw-request-time`, `success`, `error`), the one log line per call, and how a
client is built from the settings it reads (`settings_key`: `sms_client`/`email_client` rebuild
a cached client when that key changes). SES (`ses.py`, not plain HTTP) stands on it directly.

`SmsClient.send_sms` runs fixed steps: build the request (subclass), post it (here: session,
timeouts, turning library errors into ours), check the answer (subclass).
"""

import logging
import os
import re
import time
from typing import Any

import requests
from django.conf import settings

from notifyproject import metrics
from notifyproject.masking import recipient_mask
from sending.clients.exceptions import ClientException, SmsClientResponseException

logger = logging.getLogger(__name__)

EXCERPT_LENGTH = 200


def excerpt(text: str) -> str:
    """A provider's answer shortened to one readable line for an error message."""
    flat = re.sub(r"\s+", " ", text).strip()
    if not flat:
        return "empty answer"
    return flat if len(flat) <= EXCERPT_LENGTH else f"{flat[:EXCERPT_LENGTH]}…"


class ProviderClient:
    name: str = ""
    # The settings `from_settings` reads: a cached client is rebuilt when one changes.
    settings_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._request_time = f"clients.{self.name}.request-time"
        self._raw_request_time = f"clients.{self.name}.raw-request-time"
        self._success = f"clients.{self.name}.success"
        self._error = f"clients.{self.name}.error"

    @classmethod
    def from_settings(cls) -> "ProviderClient":
        raise NotImplementedError

    @classmethod
    def settings_key(cls) -> tuple:
        """What this client is built from, as it is now (see `settings_names`)."""
        from django.conf import settings

        return tuple(getattr(settings, name) for name in cls.settings_names)

    def _record(
        self,
        duration: float,
        *,
        reference: str,
        raw_duration: float | None = None,
        status_code: int | None = None,
        error: ClientException | None = None,
    ) -> None:
        """The call's metrics and its one log line (`provider request succeeded`/`failed`)."""
        metrics.timing(self._request_time, duration)
        extra: dict[str, Any] = {
            "provider": self.name,
            "reference": reference,
            "duration_ms": round(duration * 1000, 2),
        }
        if raw_duration is not None:
            metrics.timing(self._raw_request_time, raw_duration)
            extra["raw_duration_ms"] = round(raw_duration * 1000, 2)
        if error is None:
            metrics.incr(self._success)
            if status_code is not None:
                extra["status_code"] = status_code
            logger.info("provider request succeeded", extra=extra)
        else:
            metrics.incr(self._error)
            extra.update(status_code=error.status_code, error=error.message)
            if getattr(error, "retryable", None) is not None:
                extra["retryable"] = error.retryable
            logger.warning("provider request failed", extra=extra)


def environment_read_once(session: requests.Session, url: str) -> requests.Session:
    """A session that takes its proxy (`HTTPS_PROXY`, `NO_PROXY`, …) and CA bundle
    (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) from the environment once, now, instead of on every
    request: requests scans the whole environment for them per call, a fifth of a send's CPU
    in `bench/README.md`'s profile."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


def session_pooled(session: requests.Session) -> requests.Session:
    """A session the delivery engine's pool threads share, keeping a connection alive for each
    call in flight (`DELIVERY_CONCURRENCY`) rather than requests' default 10, past which every
    call would open and drop a connection of its own."""
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=settings.DELIVERY_CONCURRENCY)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class SmsClient(ProviderClient):
    def __init__(
        self, *, url: str, sender: str, timeout: float, session: requests.Session | None = None
    ):
        super().__init__()
        self.url = url
        self.sender = sender
        # (connect, read): the read timeout is the longest wait between bytes, not a total.
        self.timeout = (timeout, timeout)
        self.session = session or session_pooled(environment_read_once(requests.Session(), url))

    # --- the steps a provider fills in ---------------------------------------------------------

    def build_request(
        self, *, to: str, content: str, reference: str, international: bool, sender: str
    ) -> dict[str, Any]:
        """Keyword arguments for `requests.Session.post` (data/json, headers)."""
        raise NotImplementedError

    def parse_response(self, response: requests.Response) -> str | None:
        """The provider's own reference, or raise `self.error(...)` for any answer but success."""
        raise NotImplementedError

    # --- fixed --------------------------------------------------------------------------------

    def error(self, status_code: int | None, message: str) -> SmsClientResponseException:
        return SmsClientResponseException(self.name, status_code, message)

    def send_sms(
        self,
        *,
        to: str,
        content: str,
        reference: str,
        international: bool = False,
        sender: str | None = None,
    ) -> str | None:
        """Send one text; `sender` is its `from` (default: the client's, `SMS_SENDER`)."""
        start = time.perf_counter()
        response = None
        try:
            kwargs = self.build_request(
                to=to,
                content=content,
                reference=reference,
                international=international,
                sender=sender or self.sender,
            )
            response = self._post(kwargs)
            provider_reference = self.parse_response(response)
        except SmsClientResponseException as err:
            duration = time.perf_counter() - start
            if to and to in err.message:
                # Providers sometimes echo the number back; keep it out of our errors and logs.
                err.message = err.message.replace(to, recipient_mask(to))
                err.args = (err.provider, err.status_code, err.message)
            self._record_response(duration, response, reference=reference, error=err)
            raise
        self._record_response(time.perf_counter() - start, response, reference=reference)
        return provider_reference

    def _post(self, kwargs: dict[str, Any]) -> requests.Response:
        try:
            # A redirect would turn the POST into a GET: let it show as the error it is.
            return self.session.post(
                self.url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        # ConnectTimeout is also a ConnectionError: timeouts first.
        except requests.Timeout as err:
            raise self.error(504, "Gateway timeout") from err
        except requests.RequestException as err:
            raise self.error(None, excerpt(f"{type(err).__name__}: {err}")) from err

    def _record_response(
        self,
        duration: float,
        response: requests.Response | None,
        *,
        reference: str,
        error: SmsClientResponseException | None = None,
    ) -> None:
        # The wire alone is `response.elapsed`; no answer, no wire time.
        self._record(
            duration,
            reference=reference,
            raw_duration=None if response is None else response.elapsed.total_seconds(),
            status_code=None if response is None else response.status_code,
            error=error,
        )
