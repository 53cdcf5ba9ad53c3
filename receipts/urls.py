"""The receipt and received-text endpoints: each SMS provider's from `settings.SMS_PROVIDERS`
(`notifications/sms/<name>`, `notifications/sms/receive/<name>`), SES's, and the /v2 list."""

from django.urls import path

from receipts import api_v2, views

urlpatterns = [
    *(
        path(f"notifications/sms/{name}", view.as_view(), name=f"receipt-{name}")
        for name, view in views.SMS_RECEIPT_VIEWS.items()
    ),
    path("notifications/email/ses", views.SesReceiptView.as_view(), name="receipt-ses"),
    *(
        path(f"notifications/sms/receive/{name}", view.as_view(), name=f"receipt-{name}-inbound")
        for name, view in views.RECEIVED_TEXT_VIEWS.items()
    ),
    path(
        "v2/received-text-messages",
        api_v2.ReceivedTextListView.as_view(),
        name="v2-received-texts",
    ),
]
