from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.lib.errors import DomainError
from console.services import API_TOKEN_SHOWN_CHARS, api_token_create


class Command(BaseCommand):
    help = "Create a REST API token for a user and print it once (use it as 'Authorization: Token <token>')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--days", type=int, default=90, help="validity in days (default 90)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            instance, token = api_token_create(username=options["user"], days=options["days"])
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        user = instance.user.get_username()
        shown = instance.token_key[:API_TOKEN_SHOWN_CHARS]
        self.stderr.write(
            f"token {shown}… for {user}, expires {instance.expiry:%Y-%m-%d} (revoke: revoke_api_tokens --key {shown})"
        )
        self.stdout.write(token)
