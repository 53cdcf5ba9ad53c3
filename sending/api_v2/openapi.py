"""The /v2 API in the OpenAPI schema (contract section 11): the shapes of its answers, as
`representations` builds them, stated as serializers for drf-spectacular (they render nothing),
and the parameters its paths take. Names start with V2 so that they stand apart from the section
4 API's."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from sending.models import NotificationStatus, NotificationType

TEXT_OR_NULL = {"allow_null": True, "required": True}


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
    one_click_unsubscribe_url = serializers.CharField(**TEXT_OR_NULL)


class V2SanitisedValueSerializer(serializers.Serializer):
    unsanitised = serializers.CharField()
    sanitised = serializers.CharField()


class _V2Created(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField(**TEXT_OR_NULL)
    uri = serializers.URLField()
    template = V2TemplateLinkSerializer()
    scheduled_for = serializers.CharField(**TEXT_OR_NULL, help_text="always null")


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
    reference = serializers.CharField(**TEXT_OR_NULL)
    email_address = serializers.CharField(**TEXT_OR_NULL)
    phone_number = serializers.CharField(**TEXT_OR_NULL)
    line_1 = serializers.CharField(**TEXT_OR_NULL, help_text="letters are not offered: null")
    line_2 = serializers.CharField(**TEXT_OR_NULL)
    line_3 = serializers.CharField(**TEXT_OR_NULL)
    line_4 = serializers.CharField(**TEXT_OR_NULL)
    line_5 = serializers.CharField(**TEXT_OR_NULL)
    line_6 = serializers.CharField(**TEXT_OR_NULL)
    postcode = serializers.CharField(**TEXT_OR_NULL)
    postage = serializers.CharField(**TEXT_OR_NULL)
    type = serializers.ChoiceField(choices=NotificationType.choices)
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    template = V2TemplateLinkSerializer(
        allow_null=True, help_text="null for a notification made through the section 4 API"
    )
    body = serializers.CharField()
    subject = serializers.CharField(**TEXT_OR_NULL)
    created_at = serializers.DateTimeField()
    created_by_name = serializers.CharField(**TEXT_OR_NULL)
    sent_at = serializers.DateTimeField(**TEXT_OR_NULL)
    completed_at = serializers.DateTimeField(**TEXT_OR_NULL)
    scheduled_for = serializers.DateTimeField(**TEXT_OR_NULL)


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
    updated_at = serializers.DateTimeField(**TEXT_OR_NULL)
    created_by = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(min_value=1)
    body = serializers.CharField()
    subject = serializers.CharField(**TEXT_OR_NULL)
    letter_contact_block = serializers.CharField(**TEXT_OR_NULL)
    postage = serializers.CharField(**TEXT_OR_NULL)


class V2TemplateListSerializer(serializers.Serializer):
    templates = V2TemplateSerializer(many=True)


class V2PreviewSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=NotificationType.choices)
    version = serializers.IntegerField(min_value=1)
    body = serializers.CharField(help_text="a text's body as it would be sent (sanitised)")
    subject = serializers.CharField(**TEXT_OR_NULL)
    html = serializers.CharField(**TEXT_OR_NULL)


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

NOT_FOUND = OpenApiResponse(description="no such object for this service")

UNSUPPORTED = extend_schema(
    request=None,
    responses={
        400: OpenApiResponse(
            description="BadRequestError: letters, precompiled letters and their PDFs are not "
            "supported: this service sends text messages and emails"
        )
    },
)
