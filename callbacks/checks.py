from django.conf import settings
from django.core import checks


@checks.register()
def callback_basic_auth_check(app_configs, **kwargs):
    if settings.CALLBACK_BASIC_AUTH:
        return []
    return [
        checks.Warning(
            "CALLBACK_BASIC_AUTH is not set: the receipt endpoints accept receipts from anyone.",
            hint="Set CALLBACK_BASIC_AUTH=user:password (several pairs, comma-separated, "
            "for rotation) and give the same credentials to Firetext, MMG and SNS.",
            id="callbacks.W001",
        )
    ]
