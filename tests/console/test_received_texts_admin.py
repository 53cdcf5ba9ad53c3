"""Received texts and inbound numbers in the console: the sender masked, unmatched texts listed
and filterable, a number kept as GOV.UK Notify keeps it and given to one service only."""

import pytest
from django.test import Client
from django.utils import timezone

from receipts.inbound_numbers import inbound_number_set
from receipts.models import InboundNumber, ReceivedText
from sending.models import Service

TEXTS = "/admin/callbacks/receivedtext/"
NUMBERS = "/admin/callbacks/inboundnumber/"

pytestmark = pytest.mark.django_db


def text(service, content: str) -> ReceivedText:
    return ReceivedText.objects.create(
        service=service,
        provider="mmg",
        user_number="447700900123",
        notify_number="07700900500" if service else "07700900999",
        content=content,
        provider_date=timezone.now(),
    )


def page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_masks_the_sender_and_filters_unmatched_texts(admin_client, service):
    mine = text(service, "for the service")
    stray = text(None, "for nobody")

    everything = page(admin_client.get(TEXTS))
    unmatched = page(admin_client.get(TEXTS, {"matched": "no"}))
    matched = page(admin_client.get(TEXTS, {"matched": "yes"}))

    assert "4477******23" in everything and "447700900123" not in everything
    assert str(mine.id) in matched and str(stray.id) not in matched
    assert str(stray.id) in unmatched and str(mine.id) not in unmatched
    shown = page(admin_client.get(f"{TEXTS}{stray.id}/change/"))
    assert "for nobody" in shown and "447700900123" not in shown


def test_an_inbound_number_added_in_the_admin_is_kept_with_0_and_one_service_each(
    admin_client: Client, service
):
    other = Service.objects.create(name="Other")
    inbound_number_set(service=other, number="40604")

    added = admin_client.post(f"{NUMBERS}add/", {"service": service.id, "number": "447700900500"})
    taken = admin_client.post(
        f"{NUMBERS}add/", {"service": Service.objects.create(name="Third").id, "number": "40604"}
    )

    assert added.status_code == 302
    assert InboundNumber.objects.get(service=service).number == "07700900500"
    assert "40604 is already the inbound number of another service" in page(taken)
    assert InboundNumber.objects.get(number="40604").service == other
