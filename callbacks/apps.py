from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "callbacks"
    verbose_name = "Receipts"

    def ready(self):
        from callbacks import checks  # noqa: F401  (registers the system check)
