"""Receipt endpoints answer every error in their own shape (contract section 6), even when the
error is not theirs: a 500, an oversized or length-less body."""

import pytest
from django.test import Client

from receipts.models import Receipt
from tests.receipts.conftest import FIRETEXT, MMG, SES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("endpoint", "name"), [(FIRETEXT, "Firetext"), (MMG, "MMG"), (SES, "SES")])
def test_an_unhandled_error_is_a_500_in_the_receipt_shape(endpoint, name, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Receipt.objects, "create", broken)
    path, content_type = endpoint
    response = Client(raise_request_exception=False).post(
        path, "not a receipt", content_type=content_type
    )

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "result": "error",
        "message": [f"{name} callback failed: Internal server error"],
    }


def test_a_chunked_receipt_without_a_length_is_a_411_in_the_receipt_shape():
    path, content_type = MMG
    response = Client().generic(
        "POST",
        path,
        b"",
        content_type=content_type,
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
    )

    assert response.status_code == 411
    problem = "Length Required: send the body with a Content-Length header"
    assert response.json() == {"result": "error", "message": [f"MMG callback failed: {problem}"]}
    assert not Receipt.objects.exists()
