from django.core import checks

from receipts.authentication import RECEIPT_AUTH_SETTINGS, receipt_credentials
from receipts.parsers import RECEIPT_PARSER_CLASSES


@checks.register()
def callback_basic_auth_check(app_configs, **kwargs):
    """Warns while any provider's receipt endpoint takes receipts without credentials."""
    # A received-text endpoint takes its provider's credentials (`firetext-inbound`: Firetext's).
    open_to_all = [
        name
        for name in RECEIPT_PARSER_CLASSES
        if not receipt_credentials(name.removesuffix("-inbound"))
    ]
    if not open_to_all:
        return []
    return [
        checks.Warning(
            f"CALLBACK_BASIC_AUTH is not set: the {', '.join(open_to_all)} receipt endpoints "
            "accept receipts from anyone.",
            hint="Set CALLBACK_BASIC_AUTH=user:password (several pairs, comma-separated, "
            f"for rotation) for SNS, and {' and '.join(RECEIPT_AUTH_SETTINGS.values())} for each "
            "SMS provider alone (unset, they fall back to CALLBACK_BASIC_AUTH).",
            id="callbacks.W001",
        )
    ]
