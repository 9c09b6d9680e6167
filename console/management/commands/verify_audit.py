from django.core.management.base import BaseCommand, CommandParser

from console.lib.audit import audit_verify
from console.selectors import audit_chain_last_check


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; print the head hash; exit 1 when an entry was edited or deleted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--expect-head", help="head hash recorded earlier outside the database")

    def handle(self, *args: object, **options: object) -> None:
        report = audit_verify(expected_head=options.get("expect_head"))
        last = audit_chain_last_check()
        if report.checked == 0 and last is not None and last.checked > 0:
            # An empty table after a check that saw entries means they were removed wholesale (e.g. TRUNCATE).
            self.stderr.write(
                f"audit chain BROKEN: the table is empty, but the check of {last.checked_at:%Y-%m-%d %H:%M} UTC saw "
                f"{last.checked} entries with head {last.head_hash}"
            )
            raise SystemExit(1)
        if report.ok and last is not None and last.ok and report.checked < last.checked:
            self.stderr.write(
                f"audit chain BROKEN: {report.checked} entries now, {last.checked} at the check of "
                f"{last.checked_at:%Y-%m-%d %H:%M} UTC (entries were removed from the end)"
            )
            raise SystemExit(1)
        if report.ok:
            self.stdout.write(f"audit chain intact: {report.checked} entries")
            self.stdout.write(f"head hash: {report.head_hash}")
            return
        self.stderr.write(f"audit chain BROKEN at entry #{report.first_break.entry_id}: {report.first_break.reason}")
        self.stderr.write(f"checked {report.checked} entries; head hash: {report.head_hash}")
        raise SystemExit(1)
