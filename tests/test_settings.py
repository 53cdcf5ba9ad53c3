import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import REPO_ROOT


def start_up(*options: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *options],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PROVIDER_TIMEOUT_SECONDS": "ten"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"PROVIDER_TIMEOUT_SECONDS": "nan"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"PROVIDER_TIMEOUT_SECONDS": "inf"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"PROVIDER_TIMEOUT_SECONDS": "-inf"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"PROVIDER_TIMEOUT_SECONDS": "1e400"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"PROVIDER_TIMEOUT_SECONDS": "86400"}, "PROVIDER_TIMEOUT_SECONDS"),
        ({"SMS_RETRY_DELAY_SECONDS": "99999999999999999999"}, "SMS_RETRY_DELAY_SECONDS"),
        ({"EMAIL_MAX_RETRIES": "1000000"}, "EMAIL_MAX_RETRIES"),
        ({"Q_WORKERS": "100000"}, "Q_WORKERS"),
        ({"SECURE_HSTS_SECONDS": "-5"}, "SECURE_HSTS_SECONDS"),
        ({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER"),
        ({"SMS_MAX_RETRIES": "-1"}, "SMS_MAX_RETRIES"),
        ({"STATSD_PORT": "70000"}, "STATSD_PORT"),
        ({"DATABASE_URL": "mongodb://x/y"}, "DATABASE_URL"),
        (
            {"DATABASE_URL": "postgres://u@127.0.0.1:1/x", "DATABASE_PREPARED_STATEMENTS": "often"},
            "DATABASE_PREPARED_STATEMENTS",
        ),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"FIRETEXT_URL": "ftp://example.com"}, "FIRETEXT_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"API_RATE_LIMIT": "lots"}, "API_RATE_LIMIT"),
        ({"CALLBACK_BASIC_AUTH": "useronly"}, "CALLBACK_BASIC_AUTH"),
        ({"FIRETEXT_RECEIPT_AUTH": "firetext:"}, "FIRETEXT_RECEIPT_AUTH"),
        ({"MMG_RECEIPT_AUTH": ":password"}, "MMG_RECEIPT_AUTH"),
        ({"DEBUG": "false"}, "SECRET_KEY"),
        ({"DEBUG": "false", "SECRET_KEY": "s3cret"}, "API_KEY_ENCRYPTION_KEYS"),
        ({"API_KEY_ENCRYPTION_KEYS": "not-a-fernet-key"}, "API_KEY_ENCRYPTION_KEYS"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, named):
    result = start_up(**env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named}" in result.stderr


def test_good_values_start():
    result = start_up(
        SECRET_KEY="s3cret",
        DEBUG="false",
        ALLOWED_HOSTS="notify.example",
        API_KEY_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
    )
    assert result.returncode == 0, result.stderr


# What a deployment behind a TLS proxy sets (docs/security.md).
BEHIND_TLS_PROXY = {
    "DEBUG": "false",
    "SECRET_KEY": "k3-" + "a1b2c3d4e5" * 6,
    "ALLOWED_HOSTS": "notify.example",
    "CALLBACK_BASIC_AUTH": "provider:a-long-receipt-password",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto=https",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_COOKIES": "true",
    "API_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def test_check_deploy_is_clean_behind_a_tls_proxy():
    result = start_up("--deploy", "--fail-level", "DEBUG", **BEHIND_TLS_PROXY)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_them():
    plain = {
        k: BEHIND_TLS_PROXY[k]
        for k in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "API_KEY_ENCRYPTION_KEYS")
    }
    result = start_up("--deploy", "--fail-level", "WARNING", **plain)
    assert result.returncode != 0
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in result.stderr
