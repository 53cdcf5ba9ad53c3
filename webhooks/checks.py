from django.conf import settings
from django.core import checks


@checks.register()
def callback_insecure_check(app_configs, **kwargs):
    if not settings.SERVICE_CALLBACK_ALLOW_INSECURE or settings.DEBUG:
        return []
    return [
        checks.Warning(
            "SERVICE_CALLBACK_ALLOW_INSECURE is on with DEBUG off: services' callbacks may go "
            "over plain http:// and to loopback, private and link-local addresses (SSRF).",
            hint="Turn SERVICE_CALLBACK_ALLOW_INSECURE off outside local development and tests.",
            id="webhooks.W001",
        )
    ]
