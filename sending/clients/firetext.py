"""Firetext: a form post; success is HTTP 200 with JSON `"code": 0`, anything else is an error."""

from typing import Any

import requests
from django.conf import settings

from sending.clients.base import SmsClient, excerpt


class FiretextClient(SmsClient):
    name = "firetext"

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        international_api_key: str,
        sender: str,
        receipt_url: str | None,
        timeout: float,
        session: requests.Session | None = None,
    ):
        super().__init__(url=url, sender=sender, timeout=timeout, session=session)
        self.api_key = api_key
        self.international_api_key = international_api_key
        self.receipt_url = receipt_url

    settings_names = (
        "FIRETEXT_URL",
        "FIRETEXT_API_KEY",
        "FIRETEXT_INTERNATIONAL_API_KEY",
        "SMS_SENDER",
        "FIRETEXT_RECEIPT_URL",
        "PROVIDER_TIMEOUT_SECONDS",
    )

    @classmethod
    def from_settings(cls) -> "FiretextClient":
        return cls(
            url=settings.FIRETEXT_URL,
            api_key=settings.FIRETEXT_API_KEY,
            international_api_key=settings.FIRETEXT_INTERNATIONAL_API_KEY,
            sender=settings.SMS_SENDER,
            receipt_url=settings.FIRETEXT_RECEIPT_URL,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        )

    def build_request(
        self, *, to: str, content: str, reference: str, international: bool, sender: str
    ) -> dict[str, Any]:
        data = {
            # Firetext bills and routes non-UK numbers on a separate account.
            "apiKey": self.international_api_key if international else self.api_key,
            "from": sender,
            "to": to,
            "message": content,
            "reference": reference,
        }
        if self.receipt_url:
            data["receipt"] = self.receipt_url
        return {"data": data}

    def parse_response(self, response: requests.Response) -> str | None:
        if response.status_code != 200:
            raise self.error(response.status_code, excerpt(response.text))
        try:
            answer = response.json()
        except ValueError as err:
            raise self.error(
                response.status_code, f"answer is not JSON: {excerpt(response.text)}"
            ) from err
        if not isinstance(answer, dict) or "code" not in answer:
            raise self.error(response.status_code, f"answer has no code: {excerpt(response.text)}")
        if answer["code"] != 0:
            description = answer.get("description")
            raise self.error(
                response.status_code, str(description) if description else f"code {answer['code']}"
            )
        # Firetext gives no id of its own: receipts come back with our reference.
        return None
