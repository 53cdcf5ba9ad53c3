"""The one place that turns exceptions into API answers (contract section 4)."""

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

ERROR_NAMES = {
    status.HTTP_400_BAD_REQUEST: "ValidationError",
    status.HTTP_401_UNAUTHORIZED: "AuthError",
    status.HTTP_403_FORBIDDEN: "AuthError",
    status.HTTP_404_NOT_FOUND: "NoResultFound",
    status.HTTP_405_METHOD_NOT_ALLOWED: "MethodNotAllowed",
    status.HTTP_409_CONFLICT: "IdempotencyError",
    status.HTTP_422_UNPROCESSABLE_ENTITY: "IdempotencyError",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "BadRequestError",
    status.HTTP_429_TOO_MANY_REQUESTS: "RateLimitError",
}


def _messages(detail, field: str | None = None) -> list[str]:
    """Flatten DRF's nested error detail into "field message" strings."""
    if isinstance(detail, dict):
        return [
            message
            for key, value in detail.items()
            for message in _messages(
                value, field if key == "non_field_errors" else _join(field, key)
            )
        ]
    if isinstance(detail, list):
        return [message for item in detail for message in _messages(item, field)]
    return [f"{field} {detail}" if field else str(detail)]


def _join(parent: str | None, key) -> str:
    return f"{parent}.{key}" if parent else str(key)


def api_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Notification not found")
    response = exception_handler(exc, context)
    if response is None:
        return None
    name = ERROR_NAMES.get(response.status_code, "BadRequestError")
    if isinstance(exc, exceptions.ParseError):
        name = "BadRequestError"
    errors = [{"error": name, "message": message} for message in _messages(exc.detail)]
    body = {"status_code": response.status_code, "errors": errors}
    return Response(body, status=response.status_code, headers=_kept_headers(response))


def _kept_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in {"Retry-After", "WWW-Authenticate", "Allow"}}


def not_found(request, exception=None) -> JsonResponse:
    """An unknown path answers in the API's error shape too, not with an HTML page."""
    message = f"No such path: {request.method} {request.path}"
    body = {"status_code": 404, "errors": [{"error": "NoResultFound", "message": message}]}
    return JsonResponse(body, status=404)
