from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from console.lib.errors import DomainError
from transactions.models import IngestSource
from transactions.services import ingest_source_create, ingest_token_create


class Command(BaseCommand):
    help = "Create an ingest token for a source (created if new) and print it once: Authorization: Bearer <token>."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="ingest source name, e.g. sap-s4-prod")
        parser.add_argument("--label", default="", help="what the token is for, e.g. 'event mesh webhook'")

    def handle(self, *args: object, **options: object) -> None:
        name = options["source"]
        if slugify(name) != name:
            raise CommandError(f"source name {name!r} must be a slug such as {slugify(name) or 'sap-s4-prod'!r}")
        actor = "system:cli"
        source = IngestSource.objects.filter(name=name).first()
        try:
            if source is None:
                source = ingest_source_create(name=name, actor=actor)
                self.stderr.write(f"created ingest source {name}")
            token, secret = ingest_token_create(source=source, actor=actor, label=options["label"])
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"token {token.prefix}… for source {name}; send it as 'Authorization: Bearer <token>'")
        self.stdout.write(secret)
