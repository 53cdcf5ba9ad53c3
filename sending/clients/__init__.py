"""Provider clients: `sms_client(name)` (a provider of `settings.SMS_PROVIDERS`) and
`email_client()`.

One instance of each per process (it holds the HTTP connection pool or the boto3 client), made
again when anything it was made from changes (its `settings_key`: the settings it reads, and for
SES the AWS variables boto3 reads), so a changed setting never meets a stale client.
"""

import threading

from django.utils.module_loading import import_string

from sending.clients.base import ProviderClient, SmsClient
from sending.clients.exceptions import UnknownProviderError
from sending.clients.ses import SesClient
from sending.providers import SMS_PROVIDERS

SMS_CLIENTS: dict[str, type[SmsClient]] = {p.name: import_string(p.client) for p in SMS_PROVIDERS}

_made: dict[str, tuple[tuple, ProviderClient]] = {}
_making = threading.Lock()


def _client(client_class: type[ProviderClient]) -> ProviderClient:
    key = client_class.settings_key()
    made = _made.get(client_class.name)
    if made is not None and made[0] == key:
        return made[1]
    with _making:
        made = _made.get(client_class.name)
        if made is None or made[0] != key:
            made = _made[client_class.name] = (key, client_class.from_settings())
    return made[1]


def sms_client(name: str) -> SmsClient:
    try:
        client_class = SMS_CLIENTS[name]
    except KeyError:
        raise UnknownProviderError(f"no SMS client named {name!r}") from None
    return _client(client_class)


def email_client() -> SesClient:
    return _client(SesClient)


def clients_forget() -> None:
    """Drop every client made (they are made again on first use)."""
    _made.clear()


__all__ = [
    "SMS_CLIENTS",
    "SesClient",
    "SmsClient",
    "clients_forget",
    "email_client",
    "sms_client",
]
