"""The one place that turns exceptions into API answers (contract section 4): DRF's exception
handler for the API views, and Django's handlers (400, 403, 404, 500) for everything else, so
no answer is ever an HTML page. A receipt endpoint answers in its own shape (contract
section 6)."""

import logging
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
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
    status.HTTP_500_INTERNAL_SERVER_ERROR: "InternalServerError",
}
# JSON can carry a lone surrogate ("\ud800"), which can't be encoded as UTF-8: an error that
# echoes one (an unknown field named so) would fail to render.
_SURROGATE = re.compile("[\ud800-\udfff]")


class RecipientRefused(exceptions.ValidationError):
    """A recipient the caller's key may not send to (a team key's, off the guest list): 400,
    named as GOV.UK Notify names it, the message naming the field as a validation error does."""

    error_name = "BadRequestError"


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
    message = f"{field} {detail}" if field else str(detail)
    return [_SURROGATE.sub("\ufffd", message)]


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
    name = getattr(exc, "error_name", name)  # an exception may name itself (the /v2 API's do)
    errors = [{"error": name, "message": message} for message in _messages(exc.detail)]
    body = {"status_code": response.status_code, "errors": errors}
    return Response(body, status=response.status_code, headers=_kept_headers(response))


def _kept_headers(response) -> dict:
    return {k: v for k, v in response.items() if k in {"Retry-After", "WWW-Authenticate", "Allow"}}


def error_response(request, code: int, message: str, *, name: str | None = None) -> JsonResponse:
    """An answer outside DRF: the API's error shape, or the receipts' where it was for one."""
    message = _SURROGATE.sub("\ufffd", message)
    provider = _receipt_provider(request)
    if provider is not None:
        body = {"result": "error", "message": [f"{provider} callback failed: {message}"]}
    else:
        error = {"error": name or ERROR_NAMES.get(code, "BadRequestError"), "message": message}
        body = {"status_code": code, "errors": [error]}
    return JsonResponse(body, status=code)


def _receipt_provider(request) -> str | None:
    """The display name of the provider whose receipt endpoint the request is for, if any."""
    try:
        match = request.resolver_match or resolve(request.path_info)
    except Resolver404:
        return None
    # The receipt views say whom their answers name (`error_label`): `sending/` knows none.
    error_label = getattr(getattr(match.func, "view_class", None), "error_label", None)
    return error_label() if error_label else None


def body_too_big_message() -> str:
    return f"body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"


def bad_request(request, exception=None) -> JsonResponse:
    """Django's 400s: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413 here), a bad Host header,
    too many form fields."""
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, 413, body_too_big_message())
    return error_response(request, 400, "Bad request", name="BadRequestError")


def permission_denied(request, exception=None) -> JsonResponse:
    return error_response(request, 403, "Permission denied")


def not_found(request, exception=None) -> JsonResponse:
    """An unknown path answers in the API's error shape too, not with an HTML page."""
    return error_response(request, 404, f"No such path: {request.method} {request.path}")


def server_error(request) -> JsonResponse:
    """A bug slipped through: the error is logged by Django with its traceback."""
    return error_response(request, 500, "Internal server error")


class JsonServerErrorMiddleware:
    """A bug that slipped through answers in the contract's JSON shape even with `DEBUG` on
    (Django would show its HTML or plain-text debug page instead of `handler500`); the admin
    keeps Django's debug page. Logged as Django logs a 500, with the traceback."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path_info.startswith("/admin/") or isinstance(
            exception, (Http404, PermissionDenied, SuspiciousOperation, RequestDataTooBig)
        ):
            return None  # Django's own handlers answer these (see bad_request, not_found)
        logging.getLogger("django.request").error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500, "method": request.method},
        )
        # As Django's own handler does: the test client re-raises what this signal carries.
        got_request_exception.send(sender=None, request=request)
        return server_error(request)


class LengthRequiredMiddleware:
    """A chunked body that reached Django without a length (the server did not de-chunk it,
    see `notifyproject.wsgi.ChunkedBodyReader`) would read as empty: refuse it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            return error_response(
                request, 411, "Length Required: send the body with a Content-Length header"
            )
        return self.get_response(request)
