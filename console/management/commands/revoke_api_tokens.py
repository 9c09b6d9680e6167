from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.lib.errors import DomainError
from console.services import api_tokens_revoke


class Command(BaseCommand):
    help = "Revoke a user's REST API tokens (all of them, or the one whose key prefix is given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--key", help="the token's first characters, as create_api_token shows them (8 or more)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            revoked = api_tokens_revoke(username=options["user"], key_prefix=options.get("key"))
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"revoked {revoked} token(s)")
