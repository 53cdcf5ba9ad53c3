"""Receipt and received-text endpoints (contract section 6): one base, one subclass per provider
and kind."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from receipts.authentication import callback_credentials_valid
from receipts.inbox import receipt_take
from receipts.models import ReceiptProvider
from receipts.parsers import RECEIPT_PARSER_CLASSES
from sending.api.errors import body_too_big_message
from sending.providers import SMS_PROVIDERS, SmsProvider


@method_decorator(csrf_exempt, name="dispatch")
class ReceiptView(View):
    """Authenticate, read the body, store it (`receipt_take`: the inbox), answer.

    Not the API's key authentication: providers use HTTP basic auth, each its own pairs when
    set (`<NAME>_RECEIPT_AUTH`: FIRETEXT_RECEIPT_AUTH, …), else CALLBACK_BASIC_AUTH.
    The body is read raw, so the parsers see exactly what a replay will see.

    A plain Django view, not DRF's: it reads no parsed data, negotiates nothing (providers get
    JSON whatever their Accept header says) and authenticates on its own, and DRF's request,
    response and dispatch were a sixth of a receipt's CPU (bench/README.md).
    """

    provider: str  # a key of RECEIPT_PARSER_CLASSES: who posts it, whose credentials apply
    accepted = {"result": "success"}
    kind = ""  # what is posted here: a receipt, or (`-inbound`) a received text

    @property
    def parser(self) -> str:
        """The key of RECEIPT_PARSER_CLASSES that reads what is posted here."""
        return f"{self.provider}{self.kind}"

    @classmethod
    def error_label(cls) -> str:
        """Whom the answers to a body Django refuses name (`sending.api.errors`), as for
        ours: "Firetext callback failed: …"."""
        return ReceiptProvider(f"{cls.provider}{cls.kind}").label

    def post(self, request):
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        if not callback_credentials_valid(authorization, provider=self.provider):
            # SNS sends credentials only after this challenge.
            return self.error(
                "authentication required",
                401,
                headers={"WWW-Authenticate": 'Basic realm="notify receipts"'},
            )
        try:
            body = request.body
        except RequestDataTooBig:
            return self.error(body_too_big_message(), 413)
        messages = receipt_take(
            provider=self.parser,
            body=body,
            content_type=request.META.get("CONTENT_TYPE", ""),
        )
        if messages:
            return JsonResponse({"result": "error", "message": messages}, status=400)
        return JsonResponse(self.accepted)

    def error(self, problem: str, code: int, headers=None) -> JsonResponse:
        display_name = RECEIPT_PARSER_CLASSES[self.provider].display_name
        message = f"{display_name} callback failed: {problem}"
        return JsonResponse({"result": "error", "message": [message]}, status=code, headers=headers)

    def http_method_not_allowed(self, request, *args, **kwargs) -> JsonResponse:
        """In the API's error shape, as for any endpoint (contract section 4)."""
        error = {"error": "MethodNotAllowed", "message": f'Method "{request.method}" not allowed.'}
        allow = ", ".join(self._allowed_methods())
        return JsonResponse(
            {"status_code": 405, "errors": [error]}, status=405, headers={"Allow": allow}
        )


class SesReceiptView(ReceiptView):
    provider = "ses"


class ReceivedTextView(ReceiptView):
    """A text someone sent to one of our numbers: the provider's credentials, as for its
    receipts; stored raw, then its row (`receipts.received_texts`); GOV.UK Notify's answer."""

    accepted = {"status": "ok"}
    kind = "-inbound"


def _provider_view(base: type[ReceiptView], provider: SmsProvider) -> type[ReceiptView]:
    """A class of its own (`FiretextReceiptView`), not `as_view(provider=…)`: a body Django
    refuses is answered in the view class's name (`error_label`)."""
    name = f"{provider.name.title().replace('-', '')}{base.__name__}"
    return type(name, (base,), {"provider": provider.name, "__module__": __name__})


# Each SMS provider's endpoints (`receipts/urls.py`), from `settings.SMS_PROVIDERS`.
SMS_RECEIPT_VIEWS = {p.name: _provider_view(ReceiptView, p) for p in SMS_PROVIDERS}
RECEIVED_TEXT_VIEWS = {
    p.name: _provider_view(ReceivedTextView, p) for p in SMS_PROVIDERS if p.inbound_parser
}
