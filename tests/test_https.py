"""Behind a TLS proxy (SECURE_PROXY_SSL_HEADER, SECURE_SSL_REDIRECT, HSTS, secure cookies)."""

import pytest
from django.test import Client


@pytest.fixture
def behind_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    return Client()  # made after the change: middleware reads the settings when it starts


def test_plain_http_is_redirected_to_https(behind_proxy):
    response = behind_proxy.get("/notifications", HTTP_HOST="localhost")
    assert response.status_code == 301
    assert response["Location"] == "https://localhost/notifications"


@pytest.mark.django_db
def test_https_through_the_proxy_is_served_with_hsts(behind_proxy):
    response = behind_proxy.get("/notifications", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 401
    assert response["Strict-Transport-Security"] == "max-age=31536000"


def test_load_balancer_probes_stay_on_plain_http(behind_proxy):
    assert behind_proxy.get("/livez").status_code == 200
