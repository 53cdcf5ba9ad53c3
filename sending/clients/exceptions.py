"""One root for every provider failure, carrying which provider, the HTTP status and its text.

Configuration mistakes (an unknown provider name) are not provider failures and stay outside
this root (`ValueError`).
"""


class ClientException(Exception):
    def __init__(self, provider: str, status_code: int | None, message: str) -> None:
        self.provider = provider
        self.status_code = status_code
        self.message = message
        super().__init__(provider, status_code, message)

    def __str__(self) -> str:
        status = self.status_code if self.status_code is not None else "no answer"
        return f"{self.provider} error ({status}): {self.message}"


class SmsClientResponseException(ClientException):
    """Firetext or MMG failed, answered with an error, or answered something we can't read."""


class EmailClientException(ClientException):
    """SES failed; `retryable` says whether sending again later may help."""

    retryable = True

    def __init__(
        self,
        provider: str,
        status_code: int | None,
        message: str,
        *,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(provider, status_code, message)
        if retryable is not None:
            self.retryable = retryable


class EmailClientThrottlingException(EmailClientException):
    retryable = True


class EmailClientNonRetryableException(EmailClientException):
    retryable = False


class UnknownProviderError(KeyError, ValueError):
    """A provider name we have no client for: a programming or configuration mistake."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown provider"
