"""`GET /v2/received-text-messages` (contract section 11): the caller's received texts, newest
first, a page at a time, in GOV.UK Notify's shape, for its official clients unchanged. Here, with
the received texts, on the /v2 API's base view (the ground does not import what stands on it)."""

import uuid
from urllib.parse import urlencode

from django.db.models import Q
from rest_framework.response import Response

from receipts.models import ReceivedText
from sending.api.serializers import StrictSerializer
from sending.api_v2 import openapi
from sending.api_v2.representations import timestamp
from sending.api_v2.serializers import UuidField
from sending.api_v2.views import PAGE_SIZE, V2View


class ReceivedTextListQuerySerializer(StrictSerializer):
    older_than = UuidField(required=False)


def received_text_v2(text: ReceivedText) -> dict:
    return {
        "id": str(text.id),
        "user_number": text.user_number,
        "notify_number": text.notify_number,
        "created_at": timestamp(text.created_at),
        "service_id": str(text.service_id),
        "content": text.content,
    }


def received_text_list(*, service, older_than: uuid.UUID | None) -> list[ReceivedText]:
    """A page of the service's texts, newest first; after `older_than` when given (an id not
    among them: none, as GOV.UK Notify)."""
    rows = ReceivedText.objects.filter(service=service)
    if older_than is not None:
        anchor = rows.filter(id=older_than).values("created_at", "id").first()
        if anchor is None:
            return []
        at = anchor["created_at"]
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=anchor["id"]))
    return list(rows.order_by("-created_at", "-id")[:PAGE_SIZE])


class ReceivedTextListView(V2View):
    @openapi.RECEIVED_TEXTS
    def get(self, request):
        query = ReceivedTextListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = received_text_list(
            service=request.user, older_than=query.validated_data.get("older_than")
        )
        links = {"current": request.build_absolute_uri()}
        if page:
            # As GOV.UK Notify: `next` whenever this page has any; the official client's
            # iterator follows it until a page comes back empty.
            older = urlencode({"older_than": str(page[-1].id)})
            links["next"] = request.build_absolute_uri(f"{request.path}?{older}")
        return Response(
            {"received_text_messages": [received_text_v2(row) for row in page], "links": links}
        )
