from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sending.key_encryption import SecretUnreadable, secret_reencrypt
from sending.models import ApiKey


class Command(BaseCommand):
    help = (
        "Encrypt every stored API key secret again with the first key of "
        "API_KEY_ENCRYPTION_KEYS, so older keys can then be dropped from it. Safe to repeat."
    )

    def handle(self, *args, **options):
        ids = list(ApiKey.objects.exclude(secret_encrypted="").values_list("id", flat=True))
        unreadable = []
        for done, key_id in enumerate(ids, start=1):
            with transaction.atomic():
                key = ApiKey.objects.select_for_update().get(id=key_id)
                try:
                    key.secret_encrypted = secret_reencrypt(key.secret_encrypted)
                except SecretUnreadable:
                    unreadable.append(key_id)
                    continue
                key.save(update_fields=["secret_encrypted"])
            if done % 500 == 0:
                self.stdout.write(f"{done}/{len(ids)}")
        self.stdout.write(f"re-encrypted {len(ids) - len(unreadable)} of {len(ids)} secrets")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} secrets (API key ids {', '.join(map(str, unreadable[:20]))}) "
                "can't be decrypted by any key in API_KEY_ENCRYPTION_KEYS: put back the key that "
                "encrypted them"
            )
