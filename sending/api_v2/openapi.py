"""The /v2 API in the OpenAPI schema (contract section 11): the shapes of its answers, as
`representations` builds them, stated as serializers for drf-spectacular (they render nothing),
and the parameters its paths take. Names start with V2 so that they stand apart from the section
4 API's."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from sending.models import NotificationStatus, NotificationType

NULLABLE = {"allow_null": True}


class V2TemplateLinkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField(min_value=1)
    uri = serializers.URLField()


class V2SmsContentSerializer(serializers.Serializer):
    body = serializers.CharField(help_text="the text as sent: filled in and sanitised")
    from_number = serializers.CharField()


class V2EmailContentSerializer(serializers.Serializer):
    body = serializers.CharField()
    subject = serializers.CharField()
    from_email = serializers.CharField()
    one_click_unsubscribe_url = serializers.CharField(**NULLABLE)


class V2SanitisedValueSerializer(serializers.Serializer):
    unsanitised = serializers.CharField()
    sanitised = serializers.CharField()


class _V2Created(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField(**NULLABLE)
    uri = serializers.URLField()
    template = V2TemplateLinkSerializer()
    scheduled_for = serializers.CharField(**NULLABLE, help_text="always null")


class V2SmsCreatedSerializer(_V2Created):
    content = V2SmsContentSerializer()


class V2EmailCreatedSerializer(_V2Created):
    content = V2EmailContentSerializer()
    sanitised_content = serializers.DictField(
        child=V2SanitisedValueSerializer(),
        help_text="each personalisation value `sanitise_content_for` changed",
    )


class V2NotificationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField(**NULLABLE)
    email_address = serializers.CharField(**NULLABLE)
    phone_number = serializers.CharField(**NULLABLE)
    line_1 = serializers.CharField(**NULLABLE, help_text="letters are not offered: null")
    line_2 = serializers.CharField(**NULLABLE)
    line_3 = serializers.CharField(**NULLABLE)
    line_4 = serializers.CharField(**NULLABLE)
    line_5 = serializers.CharField(**NULLABLE)
    line_6 = serializers.CharField(**NULLABLE)
    postcode = serializers.CharField(**NULLABLE)
    postage = serializers.CharField(**NULLABLE)
    type = serializers.ChoiceField(choices=NotificationType.choices)
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    template = V2TemplateLinkSerializer(
        allow_null=True, help_text="null for a notification made through the section 4 API"
    )
    body = serializers.CharField()
    subject = serializers.CharField(**NULLABLE)
    created_at = serializers.DateTimeField()
    created_by_name = serializers.CharField(**NULLABLE)
    sent_at = serializers.DateTimeField(**NULLABLE)
    completed_at = serializers.DateTimeField(**NULLABLE)
    scheduled_for = serializers.DateTimeField(**NULLABLE)


class V2LinksSerializer(serializers.Serializer):
    current = serializers.URLField()
    next = serializers.URLField(
        required=False, help_text="present while this page has any: follow it until one is empty"
    )


class V2NotificationListSerializer(serializers.Serializer):
    notifications = V2NotificationSerializer(many=True, help_text="up to 250, newest first")
    links = V2LinksSerializer()


class V2TemplateSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=NotificationType.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(**NULLABLE)
    created_by = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(min_value=1)
    body = serializers.CharField()
    subject = serializers.CharField(**NULLABLE)
    letter_contact_block = serializers.CharField(**NULLABLE)
    postage = serializers.CharField(**NULLABLE)


class V2TemplateListSerializer(serializers.Serializer):
    templates = V2TemplateSerializer(many=True)


class V2PreviewSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=NotificationType.choices)
    version = serializers.IntegerField(min_value=1)
    body = serializers.CharField(help_text="a text's body as it would be sent (sanitised)")
    subject = serializers.CharField(**NULLABLE)
    html = serializers.CharField(**NULLABLE)


class V2ReceivedTextSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_number = serializers.CharField()
    notify_number = serializers.CharField()
    created_at = serializers.DateTimeField()
    service_id = serializers.UUIDField()
    content = serializers.CharField(allow_blank=True)


class V2ReceivedTextListSerializer(serializers.Serializer):
    received_text_messages = V2ReceivedTextSerializer(many=True)
    links = V2LinksSerializer()


def path_uuid(name: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)


VERSION_PARAMETER = OpenApiParameter(
    "version", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH
)

UNSUPPORTED = extend_schema(
    request=None,
    responses={
        400: OpenApiResponse(
            description="BadRequestError: letters, precompiled letters and their PDFs are not "
            "supported: this service sends text messages and emails"
        )
    },
)

RECEIVED_TEXTS = extend_schema(
    operation_id="v2_received_text_messages_list",
    parameters=[OpenApiParameter("older_than", OpenApiTypes.UUID)],
    responses={
        200: V2ReceivedTextListSerializer,
        400: OpenApiResponse(description="ValidationError: older_than is not a valid UUID"),
    },
)
