import uuid
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from django.core import signing
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from sending.api.errors import RecipientRefused
from sending.api.idempotency import idempotent_create_schema, idempotent_response
from sending.api.serializers import (
    BATCH_LIMIT,
    EmailBatchRequestSerializer,
    EmailRequestSerializer,
    NotificationBatchSerializer,
    NotificationFilterSerializer,
    NotificationSerializer,
    SmsBatchRequestSerializer,
    SmsRequestSerializer,
    batch_items_validate,
)
from sending.guest_list import TEAM_KEY_REFUSED, recipients_refused_for_key
from sending.models import Notification, NotificationType
from sending.services import notification_create, notifications_create

RECIPIENT_FIELDS = {NotificationType.SMS: "phone_number", NotificationType.EMAIL: "email_address"}


def recipients_check_key(request, items: list[dict], *, place_prefix: str | None = None) -> None:
    """400 naming each item whose recipient the caller's key may not send to (a team key's
    recipients must be on the service's guest list); `place_prefix` names a batch's items."""
    if not items:
        return
    notification_type = items[0]["notification_type"]
    refused = recipients_refused_for_key(
        service=request.user,
        key_type=request.auth.key_type,
        notification_type=notification_type,
        recipients=[item["recipient"] for item in items],
    )
    if not refused:
        return
    field = RECIPIENT_FIELDS[notification_type]
    errors = {
        (f"{place_prefix}[{place}].{field}" if place_prefix else field): [TEAM_KEY_REFUSED]
        for place, item in enumerate(items)
        if item["recipient"] in refused
    }
    raise RecipientRefused(errors)


class NotificationCreateView(APIView):
    """Validate with `request_serializer`, then create through the one write path (at most once
    per `Idempotency-Key`)."""

    request_serializer: type[SmsRequestSerializer | EmailRequestSerializer]

    def post(self, request):
        def create():
            serializer = self.request_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            fields = serializer.notification_fields()
            recipients_check_key(request, [fields])
            notification = notification_create(
                service=request.user, key_type=request.auth.key_type, **fields
            )
            return status.HTTP_201_CREATED, NotificationSerializer(notification).data

        return idempotent_response(request, create=create)


@idempotent_create_schema(request=SmsRequestSerializer, created=NotificationSerializer)
class SmsCreateView(NotificationCreateView):
    request_serializer = SmsRequestSerializer


@idempotent_create_schema(request=EmailRequestSerializer, created=NotificationSerializer)
class EmailCreateView(NotificationCreateView):
    request_serializer = EmailRequestSerializer


class NotificationBatchCreateView(APIView):
    """1 to 1,000 notifications in one request, all or nothing (contract section 4, "Batches")."""

    item_serializer: type[SmsRequestSerializer | EmailRequestSerializer]

    def throttle_cost(self, request) -> int:
        """Each item counts once against the rate limit (a batch too big to accept, as one
        more than the limit)."""
        items = request.data.get("notifications") if isinstance(request.data, dict) else None
        return min(len(items), BATCH_LIMIT + 1) if isinstance(items, list) and items else 1

    def post(self, request):
        def create():
            items = batch_items_validate(request.data, self.item_serializer)
            recipients_check_key(request, items, place_prefix="notifications")
            notifications = notifications_create(
                service=request.user, notifications=items, key_type=request.auth.key_type
            )
            answer = NotificationSerializer(notifications, many=True).data
            return status.HTTP_201_CREATED, {"notifications": answer}

        return idempotent_response(request, create=create)


@idempotent_create_schema(request=SmsBatchRequestSerializer, created=NotificationBatchSerializer)
class SmsBatchCreateView(NotificationBatchCreateView):
    item_serializer = SmsRequestSerializer


@idempotent_create_schema(request=EmailBatchRequestSerializer, created=NotificationBatchSerializer)
class EmailBatchCreateView(NotificationBatchCreateView):
    item_serializer = EmailRequestSerializer


class NotificationDetailView(APIView):
    @extend_schema(responses={200: NotificationSerializer})
    def get(self, request, notification_id: str):
        try:
            key = uuid.UUID(notification_id)
            notification = Notification.objects.get(id=key, service=request.user)
        except (ValueError, Notification.DoesNotExist):
            raise NotFound("Notification not found") from None
        return Response(NotificationSerializer(notification).data)


INVALID_CURSOR = "Invalid cursor"
# Every cursor the list gives out is signed (with SECRET_KEY): one it did not give out (made
# up, edited, empty) is refused, rather than read as "from the start", which would answer the
# first page again to a client following `next` for ever.
CURSOR_SIGNER = signing.Signer(salt="sending.api.views.NotificationPagination")


class NotificationPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50

    def encode_cursor(self, cursor):
        url = super().encode_cursor(cursor)
        query = parse_qs(urlsplit(url).query, keep_blank_values=True)
        signed = CURSOR_SIGNER.sign(query[self.cursor_query_param][0])
        return replace_query_param(url, self.cursor_query_param, signed)

    def decode_cursor(self, request):
        signed = request.query_params.get(self.cursor_query_param)
        if signed is None:
            return None
        try:
            issued = CURSOR_SIGNER.unsign(signed)
        except signing.BadSignature:
            raise ValidationError({"cursor": [INVALID_CURSOR]}) from None
        # DRF's own decoding, of the cursor as it was issued.
        return super().decode_cursor(
            SimpleNamespace(query_params={self.cursor_query_param: issued})
        )

    def get_paginated_response(self, data):
        return Response({"notifications": data, "links": {"next": self.get_next_link()}})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "notifications": schema,
                "links": {
                    "type": "object",
                    "properties": {"next": {"type": "string", "nullable": True}},
                },
            },
        }


class NotificationListView(ListAPIView):
    serializer_class = NotificationSerializer
    pagination_class = NotificationPagination

    @extend_schema(parameters=[NotificationFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = NotificationFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        # A key lists only the notifications made with keys of its own type, as GOV.UK Notify's.
        queryset = Notification.objects.filter(
            service=self.request.user, key_type=self.request.auth.key_type
        )
        if "status" in wanted:
            queryset = queryset.filter(status=wanted["status"])
        if "type" in wanted:
            queryset = queryset.filter(notification_type=wanted["type"])
        if "reference" in wanted:
            queryset = queryset.filter(client_reference=wanted["reference"])
        return queryset
