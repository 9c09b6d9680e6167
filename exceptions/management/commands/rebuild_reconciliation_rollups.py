"""python manage.py rebuild_reconciliation_rollups [--since DATE] [--until DATE]: recompute the reconciliation page's
daily rollups (and the ROI's reconciled transactions) from the results."""

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from exceptions.services import reconciliation_earliest_day, reconciliation_rollups_rebuild
from transactions.services.interfaces import local_day


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Recompute the reconciliation rollups from the results (every day with results, or from --since)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_date, help="first local day to rebuild (default: the first with results)")
        parser.add_argument("--until", type=_date, help="last local day to rebuild (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        today = local_day(timezone.now())
        first = options["since"] or reconciliation_earliest_day() or today
        last = options["until"] or today
        if last < first:
            raise CommandError(f"--until {last} is before --since {first}")
        began = time.monotonic()
        rows = reconciliation_rollups_rebuild(first=first, last=last)
        took = time.monotonic() - began
        self.stdout.write(f"rebuilt {(last - first).days + 1} days ({first}..{last}): {rows} rows in {took:.2f} s")
