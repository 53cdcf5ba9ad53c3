from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The operator's console: its templates, masking, the reveal permission."""

    default = True
    name = "console"
    verbose_name = "Operator's console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the console's front page as its index."""

    default = False
    default_site = "console.sites.ConsoleAdminSite"
