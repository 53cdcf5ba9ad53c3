"""GOV.UK Notify's /v2 API (contract section 11), for its official clients unchanged.

Thin views: requests are checked by `serializers`, sends made by `sends`, answers shaped by
`representations`. Letters, precompiled letters and document uploads are answered 400
BadRequestError naming what is not offered. Received texts are listed by
`receipts.api_v2`, beside them.
"""

import uuid
from urllib.parse import urlencode

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from sending.api.idempotency import idempotent_create_schema, idempotent_response
from sending.api_v2 import openapi
from sending.api_v2 import representations as shown
from sending.api_v2.authentication import JwtAuthentication
from sending.api_v2.errors import BadRequest, unsupported
from sending.api_v2.sends import (
    from_shown,
    notification_send_from_template,
    rendered_or_400,
    template_for_service,
)
from sending.api_v2.serializers import (
    EmailV2RequestSerializer,
    NotificationListQuerySerializer,
    PreviewRequestSerializer,
    SmsV2RequestSerializer,
    TemplateListQuerySerializer,
)
from sending.guest_list import TEAM_KEY_REFUSED, recipients_refused_for_key
from sending.models import Notification, NotificationType, Template, TemplateVersion
from sending.templates import email_html

PAGE_SIZE = 250


class V2View(APIView):
    authentication_classes = [JwtAuthentication]


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _uuid_or_400(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError({name: "is not a valid UUID"}) from None


class SendView(V2View):
    """POST a text or an email from a template; `Idempotency-Key` works here too."""

    serializer_class: type
    notification_type: NotificationType

    def post(self, request):
        return idempotent_response(request, create=lambda: self._create(request))

    def _create(self, request):
        data = _valid(self.serializer_class, request.data)
        fields = self.type_fields(data)
        if recipients_refused_for_key(
            service=request.user,
            key_type=request.auth.key_type,
            notification_type=self.notification_type,
            recipients=[fields["recipient"]],
        ):
            raise BadRequest(TEAM_KEY_REFUSED)
        sent = notification_send_from_template(
            service=request.user,
            notification_type=self.notification_type,
            template_id=data["template_id"],
            personalisation=data.get("personalisation") or {},
            reference=data.get("reference"),
            key_type=request.auth.key_type,
            **fields,
        )
        return _created(request, sent, self.notification_type)

    @staticmethod
    def type_fields(data: dict) -> dict:
        raise NotImplementedError


@idempotent_create_schema(request=SmsV2RequestSerializer, created=openapi.V2SmsCreatedSerializer)
class SmsSendView(SendView):
    serializer_class = SmsV2RequestSerializer
    notification_type = NotificationType.SMS

    @staticmethod
    def type_fields(data: dict) -> dict:
        return {
            "recipient": data["phone_number"].digits,
            "international": data["phone_number"].international,
            "sender_id": data.get("sms_sender_id"),
        }


@idempotent_create_schema(
    request=EmailV2RequestSerializer, created=openapi.V2EmailCreatedSerializer
)
class EmailSendView(SendView):
    serializer_class = EmailV2RequestSerializer
    notification_type = NotificationType.EMAIL

    @staticmethod
    def type_fields(data: dict) -> dict:
        return {
            "recipient": data["email_address"],
            "sender_id": data.get("email_reply_to_id"),
            "sanitise_for": data.get("sanitise_content_for") or (),
            "unsubscribe_url": data.get("one_click_unsubscribe_url"),
        }


def _created(request, sent, notification_type) -> tuple[int, dict]:
    """201 and the answer, for `idempotent_response` (the Idempotency-Key works here too)."""
    body = shown.notification_created(
        request, sent.notification, sent.rendered, from_=from_shown(notification_type, sent.sender)
    )
    return status.HTTP_201_CREATED, body


class LetterSendView(V2View):
    @openapi.UNSUPPORTED
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        raise unsupported("Precompiled letters" if "content" in data else "Letters")


class NotificationDetailView(V2View):
    @extend_schema(
        parameters=[openapi.path_uuid("notification_id")],
        responses={200: openapi.V2NotificationSerializer},
    )
    def get(self, request, notification_id: str):
        key = _uuid_or_400(notification_id, "notification_id")
        notification = Notification.objects.filter(id=key, service=request.user).first()
        if notification is None:
            raise NotFound("No result found")
        return Response(shown.notification_v2(request, notification))


class LetterPdfView(V2View):
    @extend_schema(parameters=[openapi.path_uuid("notification_id")])
    @openapi.UNSUPPORTED
    def get(self, request, notification_id: str):
        raise unsupported("Letters (and their PDFs)")


class NotificationListView(V2View):
    @extend_schema(
        operation_id="v2_notifications_list",
        parameters=[NotificationListQuerySerializer],
        responses={200: openapi.V2NotificationListSerializer},
    )
    def get(self, request):
        query = _valid(NotificationListQuerySerializer, request.query_params)
        # Only those made with keys of the caller's key type, as GOV.UK Notify lists them.
        rows = Notification.objects.filter(service=request.user, key_type=request.auth.key_type)
        if "template_type" in query:
            rows = rows.filter(notification_type=query["template_type"])
        if query.get("status"):
            rows = rows.filter(status__in=query["status"])
        if "reference" in query:
            rows = rows.filter(client_reference=query["reference"])
        if "older_than" in query:
            rows = _older_than(rows, query["older_than"])
        page = list(rows.order_by("-created_at", "-id")[:PAGE_SIZE])
        links = {"current": request.build_absolute_uri()}
        if page:
            # As GOV.UK Notify: `next` whenever this page has any, since the official client's
            # iterator reads the next id from it until a page comes back empty.
            params = {k: v for k, v in request.query_params.lists() if k != "older_than"}
            params["older_than"] = [str(page[-1].id)]
            links["next"] = request.build_absolute_uri(
                f"{request.path}?{urlencode(params, doseq=True)}"
            )
        notifications = [shown.notification_v2(request, row) for row in page]
        return Response({"notifications": notifications, "links": links})


def _older_than(rows, notification_id: uuid.UUID):
    """Those made before the given notification (an id not among them: none, as Notify)."""
    anchor = rows.filter(id=notification_id).values("created_at", "id").first()
    if anchor is None:
        return rows.none()
    at = anchor["created_at"]
    return rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=anchor["id"]))


def _template(request, template_id: str) -> Template:
    key = _uuid_or_400(template_id, "id")
    template = Template.objects.filter(id=key, service=request.user).first()
    if template is None:
        raise NotFound("No result found")
    return template


class TemplateDetailView(V2View):
    @extend_schema(
        parameters=[openapi.path_uuid("template_id")],
        responses={200: openapi.V2TemplateSerializer},
    )
    def get(self, request, template_id: str):
        return Response(shown.template_v2(_template(request, template_id)))


class TemplateVersionView(V2View):
    @extend_schema(
        parameters=[openapi.path_uuid("template_id"), openapi.VERSION_PARAMETER],
        responses={200: openapi.V2TemplateSerializer},
    )
    def get(self, request, template_id: str, version: int):
        template = _template(request, template_id)
        found = TemplateVersion.objects.filter(template=template, version=version).first()
        if found is None:
            raise NotFound("No result found")
        return Response(shown.template_v2(template, found))


class TemplateListView(V2View):
    @extend_schema(
        operation_id="v2_templates_list",
        parameters=[TemplateListQuerySerializer],
        responses={200: openapi.V2TemplateListSerializer},
    )
    def get(self, request):
        query = _valid(TemplateListQuerySerializer, request.query_params)
        templates = Template.objects.filter(service=request.user).order_by("name", "created_at")
        if "type" in query:
            templates = templates.filter(template_type=query["type"])
        return Response({"templates": [shown.template_v2(t) for t in templates]})


class TemplatePreviewView(V2View):
    @extend_schema(
        parameters=[openapi.path_uuid("template_id")],
        request=PreviewRequestSerializer,
        responses={200: openapi.V2PreviewSerializer},
    )
    def post(self, request, template_id: str):
        data = _valid(PreviewRequestSerializer, request.data)
        key = _uuid_or_400(template_id, "id")
        template = template_for_service(service=request.user, template_id=key)
        rendered = rendered_or_400(template, data["personalisation"] or {})
        is_email = template.template_type == NotificationType.EMAIL
        return Response(
            {
                "id": str(template.id),
                "type": template.template_type,
                "version": template.version,
                "body": rendered.body,
                "subject": rendered.subject,
                "html": email_html(rendered.body) if is_email else None,
            }
        )
