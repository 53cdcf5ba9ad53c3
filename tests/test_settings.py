import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def start_up(**env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
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
        ({"SMS_MAX_RETRIES": "-1"}, "SMS_MAX_RETRIES"),
        ({"STATSD_PORT": "70000"}, "STATSD_PORT"),
        ({"DATABASE_URL": "mongodb://x/y"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"FIRETEXT_URL": "ftp://example.com"}, "FIRETEXT_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"API_RATE_LIMIT": "lots"}, "API_RATE_LIMIT"),
        ({"CALLBACK_BASIC_AUTH": "useronly"}, "CALLBACK_BASIC_AUTH"),
        ({"DEBUG": "false"}, "SECRET_KEY"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, named):
    result = start_up(**env)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named}" in result.stderr


def test_good_values_start():
    result = start_up(SECRET_KEY="s3cret", DEBUG="false", ALLOWED_HOSTS="notify.example")
    assert result.returncode == 0, result.stderr
