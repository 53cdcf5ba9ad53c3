from django.urls import path

from webhooks.api import ServiceCallbackView, ServiceInboundCallbackView

urlpatterns = [
    path("service/callback", ServiceCallbackView.as_view(), name="service-callback"),
    path(
        "service/inbound-callback",
        ServiceInboundCallbackView.as_view(),
        name="service-inbound-callback",
    ),
]
