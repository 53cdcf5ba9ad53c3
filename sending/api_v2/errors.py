"""The /v2 API's errors: GOV.UK Notify's names in the error shape of contract section 4
(`sending.api.errors` turns each into its answer; `error_name` picks the name)."""

from rest_framework import exceptions, status


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request"
    error_name = "BadRequestError"


class InvalidToken(exceptions.PermissionDenied):
    """403 AuthError `Invalid token: <why>`."""

    error_name = "AuthError"

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"Invalid token: {why}")


def unsupported(what: str) -> BadRequest:
    return BadRequest(f"{what} are not supported: this service sends text messages and emails")
