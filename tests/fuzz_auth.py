"""schemathesis hooks for tests/test_schema_fuzz.py (loaded through SCHEMATHESIS_HOOKS): every
request carries the fuzzed service's key, as the section 4 API takes it (a plain bearer key) or,
on /v2, as a JWT made for that request, since a token is good for 30 seconds only."""

import os

import schemathesis
from notifications_python_client.authentication import create_jwt_token

SECRET_LENGTH = SERVICE_ID_LENGTH = 36


@schemathesis.auth(refresh_interval=None)
class ServiceKey:
    def get(self, case, context) -> str:
        return os.environ["FUZZ_API_KEY"]

    def set(self, case, key: str, context) -> None:
        if case.operation.path.startswith("/v2/"):
            secret = key[-SECRET_LENGTH:]
            service_id = key[-SECRET_LENGTH - 1 - SERVICE_ID_LENGTH : -SECRET_LENGTH - 1]
            key = create_jwt_token(secret, service_id)
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {key}"
