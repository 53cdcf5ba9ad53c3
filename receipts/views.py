"""Receipt and received-text endpoints (contract section 6): one base, one subclass per provider
and kind."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from receipts.authentication import callback_credentials_valid
from receipts.inbox import receipt_take
from receipts.models import ReceiptProvider
from receipts.parsers import RECEIPT_PARSER_CLASSES
from sending.providers import SMS_PROVIDERS, SmsProvider


class JsonAnswer(BaseContentNegotiation):
    """Providers get JSON whatever their Accept header says (DRF would answer 406)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReceiptView(APIView):
    """Authenticate, read the body, store it (`receipt_take`: the inbox), answer.

    Not the API's key authentication: providers use HTTP basic auth, each its own pairs when
    set (`<NAME>_RECEIPT_AUTH`: FIRETEXT_RECEIPT_AUTH, …), else CALLBACK_BASIC_AUTH.
    The body is read raw, so the parsers see exactly what a replay will see.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    parser_classes = []
    content_negotiation_class = JsonAnswer
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

    @extend_schema(exclude=True)
    def post(self, request):
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        if not callback_credentials_valid(authorization, provider=self.provider):
            # SNS sends credentials only after this challenge.
            return self.error(
                "authentication required",
                status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Basic realm="notify receipts"'},
            )
        try:
            body = request.body
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return self.error(f"body over {limit} bytes", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        messages = receipt_take(
            provider=self.parser,
            body=body,
            content_type=request.META.get("CONTENT_TYPE", ""),
        )
        if messages:
            return Response({"result": "error", "message": messages}, status=400)
        return Response(self.accepted)

    def error(self, problem: str, code: int, headers=None) -> Response:
        display_name = RECEIPT_PARSER_CLASSES[self.provider].display_name
        message = f"{display_name} callback failed: {problem}"
        return Response({"result": "error", "message": [message]}, status=code, headers=headers)


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
