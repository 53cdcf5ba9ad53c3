"""The `Idempotency-Key` header on the API's creating POSTs (contract section 4), over
`sending.idempotency`. A view wraps its create in `idempotent_response`:

    return idempotent_response(request, create=lambda: (201, answer_data))

where the callable validates (raising DRF's ValidationError for a 400), writes and answers the
status and the data to render. Without the header it simply runs. `idempotent_create_schema`
decorates the view with the header and the answers for the OpenAPI schema.
"""

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from sending.idempotency import (
    IdempotencyError,
    IdempotencyInProgress,
    idempotency_request_hash,
    idempotent_answer,
)
from sending.models import KeyType

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyRefused(exceptions.APIException):
    """409 (still processing) or 422 (another request), named `IdempotencyError`."""

    def __init__(self, err: IdempotencyError):
        super().__init__(err.message)
        self.status_code = (
            status.HTTP_409_CONFLICT
            if isinstance(err, IdempotencyInProgress)
            else status.HTTP_422_UNPROCESSABLE_ENTITY
        )


def idempotency_key(request) -> str | None:
    """The request's key, None without one; a 400 for a key that is not 1–255 printable ASCII."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise exceptions.ValidationError(
            {HEADER: [f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"]}
        )
    return key


def request_hash(request) -> str:
    """Method, path and the parsed body (in a canonical form, so that the same JSON written with
    other spacing or key order is the same request), and the key's type unless it is `normal`
    (so a live key's retry is never answered with a test or team key's notification; a normal
    key's hash stays what it was before key types)."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    parts = [request.method.encode(), request.path.encode(), body.encode("utf-8", "surrogatepass")]
    key_type = getattr(request.auth, "key_type", KeyType.NORMAL)
    if key_type != KeyType.NORMAL:
        parts.append(key_type.encode())
    return idempotency_request_hash(*parts)


def idempotent_response(request, *, create: Callable[[], tuple[int, Any]]) -> HttpResponse:
    """`create()`'s answer, made at most once per service and key; a replay carries
    `Idempotent-Replayed: true` and the first answer's status and body, byte for byte."""
    key = idempotency_key(request)
    if key is None:
        answer_status, data = create()
        return Response(data, status=answer_status)

    def rendered() -> tuple[int, str]:
        answer_status, data = create()
        return answer_status, JSONRenderer().render(data).decode()

    try:
        answer = idempotent_answer(
            service=request.user, key=key, request_hash=request_hash(request), create=rendered
        )
    except IdempotencyError as err:
        raise IdempotencyRefused(err) from None
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    if answer.replayed:
        response[REPLAYED_HEADER] = "true"
    return response


# --- the OpenAPI schema of the header and its answers ------------------------------------------

SCHEMA_PARAMETERS = [
    OpenApiParameter(
        HEADER,
        {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]+$"},
        location=OpenApiParameter.HEADER,
        required=False,
        description=(
            "1–255 printable ASCII characters, kept per service for 24 hours. The same key with "
            "the same body answers what the first request answered (with Idempotent-Replayed: "
            "true) and creates nothing; with a different body, 422; while the first request is "
            "still being processed, 409. A request refused with a 4xx does not take the key."
        ),
    ),
    OpenApiParameter(
        REPLAYED_HEADER,
        str,
        location=OpenApiParameter.HEADER,
        response=[201],
        enum=["true"],
        description="present, `true`, when the answer is a replay of the key's first request",
    ),
]


def idempotent_create_schema(*, request, created):
    """The schema of a view whose POST is an idempotent create: its body, the header, and every
    answer (`created` is the 201's serializer)."""
    return extend_schema_view(
        post=extend_schema(
            request=request, parameters=SCHEMA_PARAMETERS, responses=_schema_responses(created)
        )
    )


def _schema_responses(created) -> dict:
    return {
        201: created,
        400: OpenApiResponse(description="bad input: one error per problem"),
        409: OpenApiResponse(
            description="IdempotencyError: a request with this Idempotency-Key is still being "
            "processed"
        ),
        422: OpenApiResponse(
            description="IdempotencyError: Idempotency-Key has already been used with a "
            "different request"
        ),
        429: OpenApiResponse(description="rate limited; see Retry-After"),
    }
