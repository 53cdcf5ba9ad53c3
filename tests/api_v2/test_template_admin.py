"""Templates made and edited in the admin: each change a new version, with a preview."""

import pytest

from sending.models import Service, Template

pytestmark = pytest.mark.django_db


def test_adding_and_editing_a_template_in_the_admin_makes_versions(admin_client):
    service = Service.objects.create(name="Council tax")
    added = admin_client.post(
        "/admin/sending/template/add/",
        {
            "service": service.id,
            "template_type": "sms",
            "name": "Code",
            "subject": "",
            "body": "Your code is ((code))",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    template = Template.objects.get()
    assert (template.version, template.created_by) == (1, "admin:admin")

    page = admin_client.get(f"/admin/sending/template/{template.id}/change/").content.decode()
    assert "Your code is <mark>((code))</mark>" in page
    assert "Placeholders: code" in page

    changed = admin_client.post(
        f"/admin/sending/template/{template.id}/change/",
        {
            "name": "Code",
            "subject": "",
            "body": "Code: ((code))",
            "versions-TOTAL_FORMS": 1,
            "versions-INITIAL_FORMS": 1,
            "versions-0-id": template.versions.get().id,
            "versions-0-template": template.id,
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:2000]
    template.refresh_from_db()
    assert (template.version, template.body) == (2, "Code: ((code))")
    assert list(template.versions.order_by("version").values_list("version", "created_by")) == [
        (1, "admin:admin"),
        (2, "admin:admin"),
    ]


def test_the_admin_refuses_an_email_template_without_a_subject(admin_client):
    service = Service.objects.create(name="Council tax")
    answer = admin_client.post(
        "/admin/sending/template/add/",
        {
            "service": service.id,
            "template_type": "email",
            "name": "Bill",
            "subject": "",
            "body": "Pay",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )
    assert answer.status_code == 200
    assert "an email template needs a subject" in answer.content.decode()
    assert not Template.objects.exists()
