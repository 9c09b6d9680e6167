from django.core.management.base import BaseCommand, CommandParser

from console.lib.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; print the head hash; exit 1 when an entry was edited or deleted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--expect-head", help="head hash recorded earlier outside the database")

    def handle(self, *args: object, **options: object) -> None:
        report = audit_verify(expected_head=options.get("expect_head"))
        if report.ok:
            self.stdout.write(f"audit chain intact: {report.checked} entries")
            self.stdout.write(f"head hash: {report.head_hash}")
            return
        self.stderr.write(f"audit chain BROKEN at entry #{report.first_break.entry_id}: {report.first_break.reason}")
        self.stderr.write(f"checked {report.checked} entries; head hash: {report.head_hash}")
        raise SystemExit(1)
