from sending.management.sender_command import AddSenderCommand
from sending.senders import sms_sender_add


class Command(AddSenderCommand):
    help = "Add an SMS sender to a service; prints its id (the API's sms_sender_id) last."
    what = "SMS sender"
    value_name = "TEXT"
    value_help = "what texts show as their sender"

    def add(self, *, service, value: str, is_default: bool):
        return sms_sender_add(service=service, sms_sender=value, is_default=is_default)

    def shown(self, added) -> str:
        return f"SMS sender {added.sms_sender!r}"
