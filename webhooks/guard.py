"""The SSRF guard for callback URLs: `https://` only, and never an address inside our network.

Checked when a URL is configured (`callback_url_check`) and again on every connection
(`GuardedAdapter`): the host is resolved, each answer checked, and the socket connects to the
address that was checked, never to a name resolved a second time, so a DNS answer that changes
between check and use (rebinding) cannot slip through. Redirects are never followed (the sender
passes `allow_redirects=False`), so a redirect to 127.0.0.1 is just an answer that is not 2xx.
`SERVICE_CALLBACK_ALLOW_INSECURE=true` turns all of this off (local development and tests).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from sending.text_rules import text_fault


class CallbackUrlRefused(Exception):
    """A callback URL, or the address its host resolves to, that we will not call."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a seam: tests make names resolve where they like)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def address_check(address: str) -> None:
    """Refuse loopback, private, link-local, reserved, multicast and unspecified addresses
    (for IPv6, also the IPv4 one it carries: mapped, `::ffff:127.0.0.1`, or 6to4,
    `2002:7f00:1::`, which Python counts as global whatever IPv4 address it wraps)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        raise CallbackUrlRefused(f"address not allowed: {ip}")


def insecure_allowed() -> bool:
    return settings.SERVICE_CALLBACK_ALLOW_INSECURE


def url_form_check(url: str):
    """An https:// URL (http:// too when insecure is allowed) with a host and no credentials,
    on one line (`urlsplit` quietly drops CR, LF and tab, the HTTP library would not); checked
    again before each send, in case the setting changed since it was configured."""
    fault = text_fault(url, one_line=True)
    if fault is not None:
        raise CallbackUrlRefused(fault)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as err:
        raise CallbackUrlRefused("must be an https:// URL") from err
    allowed = ("https", "http") if insecure_allowed() else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise CallbackUrlRefused("must be an https:// URL")
    if parts.username or parts.password:
        raise CallbackUrlRefused("must not carry a user name or password")
    return parts


def callback_url_check(url: str) -> None:
    """At configuration: the URL's form, and every address its host resolves to."""
    parts = url_form_check(url)
    if insecure_allowed():
        return
    try:
        port = parts.port or 443
        addresses = resolve(parts.hostname, port)
    except (OSError, ValueError) as err:
        raise CallbackUrlRefused(f"host does not resolve: {parts.hostname}") from err
    for address in addresses:
        address_check(address)


class _GuardedConnectionMixin:
    """Resolve, check, and connect to the checked address; TLS still verifies the host name
    (urllib3 wraps the socket with `server_hostname` = the URL's host)."""

    def _new_conn(self) -> socket.socket:
        try:
            addresses = resolve(self._dns_host, self.port)
        except OSError as err:
            raise NewConnectionError(self, f"host does not resolve: {err}") from err
        last_error: OSError | None = None
        for address in addresses:
            if not insecure_allowed():
                address_check(address)  # CallbackUrlRefused: the sender records it
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as err:
                last_error = err
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise NewConnectionError(self, f"could not connect: {last_error}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every new connection goes through the guard."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }
