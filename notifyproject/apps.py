from django.apps import AppConfig


class NotifyProjectConfig(AppConfig):
    """The project itself, as an app only for its management commands (`qcluster`)."""

    name = "notifyproject"
    verbose_name = "Notify"
