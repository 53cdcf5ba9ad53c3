"""schemathesis against the service's own /openapi.json, under gunicorn, with a real API key
(a JWT made from it for each /v2 request: tests/fuzz_auth.py): every operation, the /v2 API's
too, no 5xx, every answer as the schema states it, and the schema states every error answer and
every limit (issue 10). Not part of `make test` (marker `fuzz`): `.ci/run`
runs it on both databases. FUZZ_EXAMPLES and FUZZ_SEED change how much and what it tries."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sending.models import ApiKey, Service
from tests.live import running_gunicorn

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

CONFIG = Path(__file__).with_name("schemathesis.toml")
AUTH_HOOKS = Path(__file__).with_name("fuzz_auth.py")


def test_the_api_keeps_to_its_schema():
    _, key = ApiKey.issue(Service.objects.create(name="Fuzzed"))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        f"--config-file={CONFIG}",
        "run",
        f"--max-examples={os.environ.get('FUZZ_EXAMPLES', '12')}",
        f"--seed={os.environ.get('FUZZ_SEED', '20261201')}",
        # One worker: with threads, CPython 3.11's ast.parse (which Hypothesis calls to
        # describe filters) can fail with "AST constructor recursion depth mismatch".
        "--workers=1",
        "--request-timeout=30",
        "--suppress-health-check=all",
        "--no-color",
    ]
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": str(AUTH_HOOKS), "FUZZ_API_KEY": key}
    # The rate limit is tested elsewhere; here it would only turn the fuzzing into 429s.
    with running_gunicorn(workers=2, API_RATE_LIMIT="1000000/min") as url:
        result = subprocess.run(
            [*command, f"{url}/openapi.json"],
            capture_output=True,
            text=True,
            timeout=1200,
            env=environment,
        )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-3000:]
