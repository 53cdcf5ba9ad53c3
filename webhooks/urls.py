from django.urls import path

from webhooks.api import ServiceCallbackView

urlpatterns = [
    path("service/callback", ServiceCallbackView.as_view(), name="service-callback"),
]
