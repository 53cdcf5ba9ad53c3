"""The small base every HTTP SMS client stands on.

`send_sms` runs fixed steps: build the request (subclass), post it (here: session, timeouts,
turning library errors into ours), check the answer (subclass). It times the whole call and the
wire alone, and counts successes and errors under `clients.{name}.…`.
"""

import logging
import re
import time
from typing import Any

import requests

from notifyproject import metrics
from notifyproject.logging import mask_recipient
from sending.clients.exceptions import SmsClientResponseException

logger = logging.getLogger(__name__)

EXCERPT_LENGTH = 200


def excerpt(text: str) -> str:
    """A provider's answer shortened to one readable line for an error message."""
    flat = re.sub(r"\s+", " ", text).strip()
    if not flat:
        return "empty answer"
    return flat if len(flat) <= EXCERPT_LENGTH else f"{flat[:EXCERPT_LENGTH]}…"


class SmsClient:
    name: str = ""

    def __init__(self, *, url: str, timeout: float, session: requests.Session | None = None):
        self.url = url
        # (connect, read): the read timeout is the longest wait between bytes, not a total.
        self.timeout = (timeout, timeout)
        self.session = session or requests.Session()
        self._request_time = f"clients.{self.name}.request-time"
        self._raw_request_time = f"clients.{self.name}.raw-request-time"
        self._success = f"clients.{self.name}.success"
        self._error = f"clients.{self.name}.error"

    # --- the steps a provider fills in ---------------------------------------------------------

    def build_request(
        self, *, to: str, content: str, reference: str, international: bool
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
        self, *, to: str, content: str, reference: str, international: bool = False
    ) -> str | None:
        start = time.perf_counter()
        response = None
        try:
            kwargs = self.build_request(
                to=to, content=content, reference=reference, international=international
            )
            response = self._post(kwargs)
            provider_reference = self.parse_response(response)
        except SmsClientResponseException as err:
            duration = time.perf_counter() - start
            if to and to in err.message:
                # Providers sometimes echo the number back; keep it out of our errors and logs.
                err.message = err.message.replace(to, mask_recipient(to))
                err.args = (err.provider, err.status_code, err.message)
            self._record(duration, response, reference=reference, error=err)
            raise
        self._record(time.perf_counter() - start, response, reference=reference)
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

    def _record(
        self,
        duration: float,
        response: requests.Response | None,
        *,
        reference: str,
        error: SmsClientResponseException | None = None,
    ) -> None:
        metrics.timing(self._request_time, duration)
        extra: dict[str, Any] = {
            "provider": self.name,
            "reference": reference,
            "duration_ms": round(duration * 1000, 2),
        }
        if response is not None:
            raw = response.elapsed.total_seconds()
            metrics.timing(self._raw_request_time, raw)
            extra["raw_duration_ms"] = round(raw * 1000, 2)
        if error is None:
            metrics.incr(self._success)
            extra["status_code"] = response.status_code if response is not None else None
            logger.info("provider request succeeded", extra=extra)
        else:
            metrics.incr(self._error)
            extra.update(status_code=error.status_code, error=error.message)
            logger.warning("provider request failed", extra=extra)
