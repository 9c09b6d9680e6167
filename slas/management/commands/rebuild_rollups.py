"""python manage.py rebuild_rollups [--since DATE] [--until DATE]: recompute the dashboards' daily rollups."""

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from slas.kpis import local_day
from slas.services.rollups import dashboard_time_zone, rollups_earliest_day, rollups_rebuild


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Recompute the daily rollups behind the SLA and ROI dashboards (every day with data, or from --since)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_date, help="first local day to rebuild (default: the first with data)")
        parser.add_argument("--until", type=_date, help="last local day to rebuild (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        today = local_day(timezone.now(), dashboard_time_zone())
        first = options["since"] or rollups_earliest_day() or today
        last = options["until"] or today
        if last < first:
            raise CommandError(f"--until {last} is before --since {first}")
        began = time.monotonic()
        rows = rollups_rebuild(first=first, last=last)
        took = time.monotonic() - began
        self.stdout.write(f"rebuilt {(last - first).days + 1} days ({first}..{last}): {rows} rows in {took:.2f} s")
