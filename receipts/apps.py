from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    """Receipts and received texts coming in. The module was `callbacks/`; its label stays
    `callbacks` so its tables, migrations, permissions and admin URLs (`/admin/callbacks/…`) are
    unchanged and no data moves."""

    name = "receipts"
    label = "callbacks"
    verbose_name = "Receipts"

    def ready(self):
        from receipts import checks  # noqa: F401  (registers the system check)
