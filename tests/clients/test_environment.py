"""The SMS clients read the proxy and CA bundle settings from the environment once, when made,
not on every send (requests scans the whole environment per call otherwise)."""

import requests

from sending.clients.base import environment_read_once


def test_proxies_and_the_ca_bundle_are_taken_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/internal-ca.pem")

    session = environment_read_once(requests.Session(), "https://www.firetext.co.uk/api")
    monkeypatch.setenv("HTTPS_PROXY", "http://changed.internal:3128")  # read no more

    assert session.trust_env is False
    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/internal-ca.pem"
    merged = session.merge_environment_settings(
        "https://www.firetext.co.uk/api", {}, None, None, None
    )
    assert merged["proxies"]["https"] == "http://proxy.internal:3128"


def test_a_host_in_no_proxy_is_reached_directly(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.mmg.co.uk")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    session = environment_read_once(requests.Session(), "https://api.mmg.co.uk/jsonv2a/api.php")

    assert "https" not in session.proxies
    assert session.verify is True
