"""Provider clients: `sms_client("firetext" | "mmg")` and `email_client()`.

One instance of each per process (it holds the HTTP connection pool or the boto3 client);
after changing settings, tests call `sms_client.cache_clear()` / `email_client.cache_clear()`.
"""

import functools

from sending.clients.base import SmsClient
from sending.clients.exceptions import UnknownProviderError
from sending.clients.firetext import FiretextClient
from sending.clients.mmg import MmgClient
from sending.clients.ses import SesClient

SMS_CLIENTS: dict[str, type[FiretextClient] | type[MmgClient]] = {
    FiretextClient.name: FiretextClient,
    MmgClient.name: MmgClient,
}


@functools.cache
def sms_client(name: str) -> SmsClient:
    try:
        client_class = SMS_CLIENTS[name]
    except KeyError:
        raise UnknownProviderError(f"no SMS client named {name!r}") from None
    return client_class.from_settings()


@functools.cache
def email_client() -> SesClient:
    return SesClient.from_settings()


__all__ = ["SMS_CLIENTS", "SesClient", "SmsClient", "email_client", "sms_client"]
