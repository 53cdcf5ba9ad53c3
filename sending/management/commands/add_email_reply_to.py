from sending.management.sender_command import AddSenderCommand
from sending.senders import email_reply_to_add


class Command(AddSenderCommand):
    help = "Add an email reply-to address to a service; prints its id (email_reply_to_id) last."
    what = "reply-to address"
    value_name = "ADDRESS"
    value_help = "the Reply-To address"

    def add(self, *, service, value: str, is_default: bool):
        return email_reply_to_add(service=service, email_address=value, is_default=is_default)
