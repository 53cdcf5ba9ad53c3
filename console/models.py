from django.db import models


class Console(models.Model):
    """No table: the home of the console's own permission (revealing a recipient)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("reveal_recipient", "Can reveal a notification's recipient")]

    def __str__(self) -> str:
        return "console"
