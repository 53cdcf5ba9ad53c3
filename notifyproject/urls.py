from django.contrib import admin
from django.urls import include, path
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from notifyproject import health

PUBLIC_SCHEMA_RENDERERS = [OpenApiJsonRenderer]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path(
        "openapi.json",
        SpectacularAPIView.as_view(
            authentication_classes=[],
            permission_classes=[AllowAny],
            renderer_classes=PUBLIC_SCHEMA_RENDERERS,
        ),
        name="openapi",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="openapi", authentication_classes=[], permission_classes=[AllowAny]
        ),
        name="docs",
    ),
    path("", include("receipts.urls")),
    path("", include("stats.urls")),
    path("", include("webhooks.urls")),
    path("v2/", include("sending.api_v2.urls")),
    path("", include("sending.urls")),
]

handler400 = "sending.api.errors.bad_request"
handler403 = "sending.api.errors.permission_denied"
handler404 = "sending.api.errors.not_found"
handler500 = "sending.api.errors.server_error"
