"""`GET`/`PUT`/`DELETE /service/callback` (contract section 4) and `/service/inbound-callback`
(section 10: the same, for received texts), with the caller's API key."""

from datetime import UTC

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from sending.api.serializers import StrictSerializer, TextField
from webhooks.guard import CallbackUrlRefused, url_form_check
from webhooks.models import ServiceCallback, ServiceInboundCallback
from webhooks.services import (
    BEARER_TOKEN_MAX_LENGTH,
    BEARER_TOKEN_MIN_LENGTH,
    BEARER_TOKEN_RULE,
    BearerTokenRefused,
    bearer_token_check,
    service_callback_delete,
    service_callback_set,
)


class CallbackRequestSerializer(StrictSerializer):
    # The schema states the scheme; what the host resolves to (never a private address) it can't.
    url = TextField(
        max_length=2048,
        one_line=True,
        help_text="https:// only; the host must not resolve to a loopback, private, link-local "
        "or reserved address",
    )
    bearer_token = TextField(
        min_length=BEARER_TOKEN_MIN_LENGTH,
        max_length=BEARER_TOKEN_MAX_LENGTH,
        one_line=True,
        trim_whitespace=False,  # a space is refused, not quietly taken off
        error_messages={"min_length": BEARER_TOKEN_RULE, "max_length": BEARER_TOKEN_RULE},
        schema={"pattern": "^[!-~]+$"},
    )

    def validate_url(self, value: str) -> str:
        try:
            url_form_check(value)
        except CallbackUrlRefused as err:
            raise serializers.ValidationError(str(err)) from None
        return value

    def validate_bearer_token(self, value: str) -> str:
        try:
            bearer_token_check(value)
        except BearerTokenRefused as err:
            raise serializers.ValidationError(str(err)) from None
        return value


class CallbackSerializer(serializers.Serializer):
    """A callback as answered: never the token, never the secret (but once, just made)."""

    url = serializers.CharField()
    created_at = serializers.DateTimeField(default_timezone=UTC)
    updated_at = serializers.DateTimeField(default_timezone=UTC)


class CallbackSetSerializer(CallbackSerializer):
    signing_secret = serializers.CharField(
        required=False, help_text="only when the callback was created: shown this once"
    )


def _refused(err: CallbackUrlRefused) -> serializers.ValidationError:
    return serializers.ValidationError({"url": [str(err)]})


class ServiceCallbackView(APIView):
    model = ServiceCallback

    @extend_schema(
        responses={200: CallbackSerializer, 404: OpenApiResponse(description="no callback set")}
    )
    def get(self, request):
        callback = self.model.objects.filter(service=request.user).first()
        if callback is None:
            raise NotFound("No callback set")
        return Response(CallbackSerializer(callback).data)

    @extend_schema(request=CallbackRequestSerializer, responses={200: CallbackSetSerializer})
    def put(self, request):
        serializer = CallbackRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            callback, new_secret = service_callback_set(
                service=request.user, model=self.model, **serializer.validated_data
            )
        except CallbackUrlRefused as err:
            raise _refused(err) from None
        data = CallbackSerializer(callback).data
        if new_secret:
            data["signing_secret"] = new_secret
        return Response(data)

    @extend_schema(responses={204: None})
    def delete(self, request):
        service_callback_delete(service=request.user, model=self.model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceInboundCallbackView(ServiceCallbackView):
    """Where the service's received texts are sent: its own URL, token and signing secret."""

    model = ServiceInboundCallback
