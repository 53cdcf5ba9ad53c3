from django.urls import path

from sending.api import views

urlpatterns = [
    path("notifications", views.NotificationListView.as_view(), name="notification-list"),
    path("notifications/sms", views.SmsCreateView.as_view(), name="notification-sms"),
    path("notifications/email", views.EmailCreateView.as_view(), name="notification-email"),
    path(
        "notifications/<str:notification_id>",
        views.NotificationDetailView.as_view(),
        name="notification-detail",
    ),
]
