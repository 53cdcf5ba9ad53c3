"""A service's callback endpoint, for `make run` and the tests: it takes status (or inbound)
callbacks (contract section 10), checks their Standard Webhooks signature when it knows the
secret, logs each in one line (never the full `to`) and keeps the last ones for
`GET /_callbacks`."""

import json
import logging
import threading
from collections import deque
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

logger = logging.getLogger(__name__)

PATH = "/service-callback"
# A service's inbound callback (received texts): a receiver of its own, with its own secret.
INBOUND_PATH = "/service-inbound-callback"


class CallbackReceiver:
    def __init__(self, keep: int = 10_000):
        self._lock = threading.Lock()
        self._received: deque[dict] = deque(maxlen=keep)
        self.signing_secret: str | None = None

    def configure(self, changes: dict) -> dict:
        """`{"signing_secret": "whsec_…"}`: check signatures from now on (null: stop)."""
        secret = changes.get("signing_secret")
        if secret is not None and not (isinstance(secret, str) and secret.startswith("whsec_")):
            raise ValueError("signing_secret: expected whsec_…")
        self.signing_secret = secret
        return {"checking_signatures": secret is not None}

    def take(self, body: bytes, headers) -> tuple[int, dict]:
        """One callback: answered 200, or 401 when its signature is wrong."""
        signature = "not checked"
        if self.signing_secret:
            try:
                Webhook(self.signing_secret).verify(body, dict(headers.items()))
                signature = "valid"
            except WebhookVerificationError:
                signature = "invalid"
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "webhook_id": headers.get("webhook-id"),
            "signature": signature,
            "payload": payload,
        }
        with self._lock:
            self._received.append(record)
        about = payload if isinstance(payload, dict) else {}
        logger.info(
            "service callback received",
            extra={
                "webhook_id": record["webhook_id"],
                "notification_id": about.get("id") or about.get("notification_id"),
                "status": about.get("status", "complaint" if "complaint_id" in about else None),
                "signature": signature,
            },
        )
        if signature == "invalid":
            return 401, {"result": "error", "message": "signature does not verify"}
        return 200, {"result": "received"}

    def received(self) -> list[dict]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
