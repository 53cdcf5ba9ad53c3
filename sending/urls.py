from django.urls import path

from sending.api import views

urlpatterns = [
    path("notifications", views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/sms", views.SmsCreateView.as_view(), name="notification-sms"),
    path("notifications/email", views.EmailCreateView.as_view(), name="notification-email"),
    path(
        "notifications/sms/batch", views.SmsBatchCreateView.as_view(), name="notification-sms-batch"
    ),
    path(
        "notifications/email/batch",
        views.EmailBatchCreateView.as_view(),
        name="notification-email-batch",
    ),
    path(
        "notifications/<str:notification_id>",
        views.NotificationDetailView.as_view(),
        name="notification-detail",
    ),
]
