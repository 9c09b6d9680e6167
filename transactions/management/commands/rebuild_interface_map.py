"""python manage.py rebuild_interface_map [--since DATE] [--until DATE]: re-derive interfaces and their rollups."""

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from transactions.services import interface_earliest_day, interface_map_rebuild
from transactions.services.interfaces import local_day


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Re-derive the integration map's hops from correlated transactions and rebuild its daily rollups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_date, help="first local day to rebuild (default: the first with data)")
        parser.add_argument("--until", type=_date, help="last local day to rebuild (default: today)")

    def handle(self, *args: Any, **options: Any) -> None:
        today = local_day(timezone.now())
        first = options["since"] or interface_earliest_day() or today
        last = options["until"] or today
        if last < first:
            raise CommandError(f"--until {last} is before --since {first}")
        began = time.monotonic()
        result = interface_map_rebuild(first=first, last=last)
        took = time.monotonic() - began
        self.stdout.write(
            f"rebuilt {result['days']} days ({first}..{last}): {result['transactions']} transactions, "
            f"{result['hops']} hops, {result['rows']} daily rows in {took:.2f} s"
        )
