from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Status callbacks"

    def ready(self):
        from webhooks import checks  # noqa: F401  (registers the system check)
