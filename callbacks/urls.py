from django.urls import path

from callbacks import views

urlpatterns = [
    path(
        "notifications/sms/firetext",
        views.FiretextReceiptView.as_view(),
        name="receipt-firetext",
    ),
    path("notifications/sms/mmg", views.MmgReceiptView.as_view(), name="receipt-mmg"),
    path("notifications/email/ses", views.SesReceiptView.as_view(), name="receipt-ses"),
]
