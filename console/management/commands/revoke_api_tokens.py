from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Revoke a user's REST API tokens (all of them, or the one whose key prefix is given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--key", help="token key prefix as printed by create_api_token")

    def handle(self, *args: object, **options: object) -> None:
        if not get_user_model().objects.filter(username=options["user"]).exists():
            raise CommandError(f"no user named {options['user']!r}")
        tokens = AuthToken.objects.filter(user__username=options["user"])
        if options.get("key"):
            tokens = tokens.filter(token_key=options["key"])
        # Deleting one by one sends post_delete per token, which writes each revocation to the audit trail.
        revoked = 0
        for token in tokens:
            token.delete()
            revoked += 1
        self.stdout.write(f"revoked {revoked} token(s)")
