from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Create a REST API token for a user and print it once (use it as 'Authorization: Token <token>')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--days", type=int, default=90, help="validity in days (default 90)")

    def handle(self, *args: object, **options: object) -> None:
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user named {options['user']!r}") from exc
        instance, token = AuthToken.objects.create(user=user, expiry=timedelta(days=options["days"]))
        self.stderr.write(f"token {instance.token_key}… for {user.get_username()}, expires {instance.expiry:%Y-%m-%d}")
        self.stdout.write(token)
