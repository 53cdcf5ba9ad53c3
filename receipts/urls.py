from django.urls import path

from receipts import api_v2, views

urlpatterns = [
    path(
        "notifications/sms/firetext",
        views.FiretextReceiptView.as_view(),
        name="receipt-firetext",
    ),
    path("notifications/sms/mmg", views.MmgReceiptView.as_view(), name="receipt-mmg"),
    path("notifications/email/ses", views.SesReceiptView.as_view(), name="receipt-ses"),
    path(
        "notifications/sms/receive/firetext",
        views.FiretextReceivedTextView.as_view(),
        name="receipt-firetext-inbound",
    ),
    path(
        "notifications/sms/receive/mmg",
        views.MmgReceivedTextView.as_view(),
        name="receipt-mmg-inbound",
    ),
    path(
        "v2/received-text-messages",
        api_v2.ReceivedTextListView.as_view(),
        name="v2-received-texts",
    ),
]
