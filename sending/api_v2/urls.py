from django.urls import path

from sending.api_v2 import views

urlpatterns = [
    path("notifications", views.NotificationListView.as_view(), name="v2-notification-list"),
    path("notifications/sms", views.SmsSendView.as_view(), name="v2-notification-sms"),
    path("notifications/email", views.EmailSendView.as_view(), name="v2-notification-email"),
    path("notifications/letter", views.LetterSendView.as_view(), name="v2-notification-letter"),
    path(
        "notifications/<str:notification_id>/pdf",
        views.LetterPdfView.as_view(),
        name="v2-notification-pdf",
    ),
    path(
        "notifications/<str:notification_id>",
        views.NotificationDetailView.as_view(),
        name="v2-notification-detail",
    ),
    path("templates", views.TemplateListView.as_view(), name="v2-template-list"),
    path("template/<str:template_id>", views.TemplateDetailView.as_view(), name="v2-template"),
    path(
        "template/<str:template_id>/version/<int:version>",
        views.TemplateVersionView.as_view(),
        name="v2-template-version",
    ),
    path(
        "template/<str:template_id>/preview",
        views.TemplatePreviewView.as_view(),
        name="v2-template-preview",
    ),
]
