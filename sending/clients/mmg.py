"""MMG: a JSON post with Basic auth; success is any 2xx with a JSON body (`{"Reference": …}`)."""

from typing import Any

import requests
from django.conf import settings

from sending.clients.base import SmsClient, excerpt


class MmgClient(SmsClient):
    name = "mmg"

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        sender: str,
        receipt_url: str | None,
        timeout: float,
        session: requests.Session | None = None,
    ):
        super().__init__(url=url, sender=sender, timeout=timeout, session=session)
        self.receipt_url = receipt_url
        # MMG issues the key already encoded for the Basic scheme.
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {api_key}"}

    settings_names = (
        "MMG_URL",
        "MMG_API_KEY",
        "SMS_SENDER",
        "MMG_RECEIPT_URL",
        "PROVIDER_TIMEOUT_SECONDS",
    )

    @classmethod
    def from_settings(cls) -> "MmgClient":
        return cls(
            url=settings.MMG_URL,
            api_key=settings.MMG_API_KEY,
            sender=settings.SMS_SENDER,
            receipt_url=settings.MMG_RECEIPT_URL,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    def build_request(
        self, *, to: str, content: str, reference: str, international: bool, sender: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reqType": "BULK",
            "MSISDN": to,
            "msg": content,
            "sender": sender,
            "cid": reference,
            "multi": True,
        }
        if self.receipt_url:
            body["delurl"] = self.receipt_url
        return {"json": body, "headers": self.headers}

    def parse_response(self, response: requests.Response) -> str | None:
        success = 200 <= response.status_code < 300
        try:
            answer = response.json()
        except ValueError as err:
            prefix = "answer is not JSON: " if success else ""
            raise self.error(response.status_code, prefix + excerpt(response.text)) from err
        if not success or not isinstance(answer, dict) or "Error" in answer:
            raise self.error(response.status_code, self._error_text(answer, response))
        reference = answer.get("Reference")
        return None if reference is None else str(reference)

    @staticmethod
    def _error_text(answer: Any, response: requests.Response) -> str:
        """MMG's `Description`, else its `Error` code, else whatever it sent."""
        if isinstance(answer, dict):
            if answer.get("Description"):
                return str(answer["Description"])
            if "Error" in answer:
                return f"error {answer['Error']}"
        return excerpt(response.text)
