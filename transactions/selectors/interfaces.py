"""Reads of the integration map: systems and interfaces with their figures over a range of local days, from rollups.

Everything here reads `InterfaceDaily` (one row per interface and day), never the hops or events, so a page over a
month of a busy estate reads a few thousand rows at most.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum, TextField
from django.db.models.functions import Cast, Coalesce

from transactions.durations import duration_label
from transactions.interfaces import histogram_add, histogram_percentiles, month_last_day, whole_months
from transactions.models import Interface, InterfaceDaily, InterfaceHop, InterfaceMonthly, System


@dataclass
class InterfaceFigures:
    """One interface's figures over a range of days."""

    id: int
    source: str
    target: str
    first_seen_at: datetime
    last_seen_at: datetime
    volume: int = 0
    errors: int = 0
    duplicates: int = 0
    late: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        """Failed hand-overs, % of the volume; None without traffic."""
        return round(100.0 * self.errors / self.volume, 2) if self.volume else None


@dataclass
class SystemFigures:
    """One system with the traffic of its interfaces over a range of days."""

    id: int
    name: str
    first_seen_at: datetime
    last_seen_at: datetime
    volume_in: int = 0
    volume_out: int = 0
    errors_in: int = 0


def interface_daily_list(*, first: date | None = None, last: date | None = None) -> QuerySet:
    """Daily rows in the range (both ends included), oldest day first."""
    rows = InterfaceDaily.objects.select_related("interface__source", "interface__target")
    if first:
        rows = rows.filter(day__gte=first)
    if last:
        rows = rows.filter(day__lte=last)
    return rows.order_by("day", "interface_id")


def _range_rollups(first: date, last: date, columns: list[str], *, interface_ids: list[int] | None = None) -> Iterator:
    """Rows of `columns` (fields both rollups have; JSON ones as text) covering [first, last] once: the monthly rows
    of the whole months inside it, then the daily rows of the days before and after them. A year is ~12 monthly rows
    and ~30 daily ones per interface, not 366."""
    months = whole_months(first, last)
    if months:
        edges = Q(day__gte=first, day__lt=months[0]) | Q(day__gt=month_last_day(months[-1]), day__lte=last)
    else:
        edges = Q(day__gte=first, day__lte=last)
    parts: list[QuerySet] = [InterfaceDaily.objects.filter(edges)]
    if months:
        parts.append(InterfaceMonthly.objects.filter(month__in=months))
    # Over a year, json.loads of every row's histogram, kinds and channels was most of the page: the JSON columns
    # come as text and orjson decodes them.
    json_columns = {"latency_histogram", "kinds", "channels"}
    for rows in parts:
        if interface_ids is not None:
            rows = rows.filter(interface_id__in=interface_ids)
        rows = rows.annotate(**{f"{c}_text": Cast(c, TextField()) for c in columns if c in json_columns})
        yield from rows.values_list(*(f"{c}_text" if c in json_columns else c for c in columns))


def interface_figures_list(*, first: date, last: date) -> list[InterfaceFigures]:
    """Every known interface with its figures in [first, last] (zero volume when it was silent), busiest first.

    Counts are exact; the latency percentiles come from the summed histograms (within LATENCY_ERROR of the exact
    figure, transactions.interfaces)."""
    figures = {
        i.pk: InterfaceFigures(i.pk, i.source.name, i.target.name, i.first_seen_at, i.last_seen_at)
        for i in Interface.objects.select_related("source", "target")
    }
    histograms: dict[int, list[int]] = defaultdict(list)
    kinds: dict[int, Counter] = defaultdict(Counter)
    channels: dict[int, Counter] = defaultdict(Counter)
    columns = ["interface_id", "volume", "errors", "duplicates", "late", "latency_histogram", "kinds", "channels"]
    for interface_id, volume, errors, duplicates, late, histogram, row_kinds, row_channels in _range_rollups(
        first, last, columns
    ):
        f = figures.get(interface_id)
        if f is None:
            continue
        f.volume += volume
        f.errors += errors
        f.duplicates += duplicates
        f.late += late
        histogram_add(histograms[interface_id], _json(histogram))
        kinds[interface_id].update(_json(row_kinds) or {})
        channels[interface_id].update(_json(row_channels) or {})
    for interface_id, f in figures.items():
        f.latency_p50_ms, f.latency_p95_ms = histogram_percentiles(histograms[interface_id], (50, 95))
        f.kinds = dict(kinds[interface_id].most_common())
        f.channels = dict(channels[interface_id].most_common())
    return sorted(figures.values(), key=lambda f: (-f.volume, f.source, f.target))


def _json(text: str | None) -> object:
    return orjson.loads(text) if text else None


def system_figures_list(
    *, first: date, last: date, interfaces: list[InterfaceFigures] | None = None
) -> list[SystemFigures]:
    """Every known system with the traffic in and out of it in [first, last], by name."""
    interfaces = interface_figures_list(first=first, last=last) if interfaces is None else interfaces
    systems = {s.name: SystemFigures(s.pk, s.name, s.first_seen_at, s.last_seen_at) for s in System.objects.all()}
    for f in interfaces:
        if f.source in systems:
            systems[f.source].volume_out += f.volume
        if f.target in systems:
            systems[f.target].volume_in += f.volume
            systems[f.target].errors_in += f.errors
    return sorted(systems.values(), key=lambda s: s.name)


def system_get(*, system_id: int) -> System:
    return System.objects.get(pk=system_id)


def interface_get(*, interface_id: int) -> Interface:
    return Interface.objects.select_related("source", "target").get(pk=interface_id)


def _sum_over(days: QuerySet, end: str, field_name: str) -> Coalesce:
    totals = (
        days.filter(**{f"interface__{end}": OuterRef("pk")}).values(f"interface__{end}").annotate(t=Sum(field_name))
    )
    return Coalesce(Subquery(totals.values("t")[:1]), 0)


def system_list(*, first: date, last: date) -> QuerySet:
    """Systems, each annotated with the hand-overs into and out of it in [first, last] (the systems API)."""
    days = InterfaceDaily.objects.filter(day__gte=first, day__lte=last)
    return System.objects.annotate(
        volume_in=_sum_over(days, "target", "volume"),
        volume_out=_sum_over(days, "source", "volume"),
        errors_in=_sum_over(days, "target", "errors"),
    ).order_by("id")


def interface_list() -> QuerySet:
    """Interfaces, by id (the interfaces API; their days come from `interface_days_attach`, once a page is cut)."""
    return Interface.objects.select_related("source", "target").order_by("id")


def interface_days_attach(interfaces: Iterable[Interface], *, first: date, last: date) -> None:
    """Set `days_in_range` on each interface (its daily rows in [first, last], oldest first, as the API shows them)
    and `latency_in_range` (p50 and p95 over the range, from the months' and edge days' histograms, as on the map).

    One query of plain rows, the JSON columns decoded by orjson, each row made the API's dict at once: a year of a
    40-interface estate is ~15,000 rows, and as prefetched model instances they cost the API a second and a half
    before a byte was written.
    """
    interfaces = list(interfaces)
    ids = [i.pk for i in interfaces]
    found: dict[int, list[dict]] = defaultdict(list)
    rows = (
        InterfaceDaily.objects.filter(interface_id__in=ids, day__gte=first, day__lte=last)
        .annotate(
            kinds_text=Cast("kinds", TextField()),
            channels_text=Cast("channels", TextField()),
        )
        .order_by("interface_id", "day")
        .values_list(
            "interface_id",
            "day",
            "volume",
            "errors",
            "duplicates",
            "late",
            "latency_p50_ms",
            "latency_p95_ms",
            "kinds_text",
            "channels_text",
        )
    )
    for interface_id, day, volume, errors, duplicates, late, p50, p95, kinds, channels in rows:
        found[interface_id].append(
            {
                "day": day.isoformat(),
                "volume": volume,
                "errors": errors,
                "duplicates": duplicates,
                "late": late,
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
                "kinds": _json(kinds) or {},
                "channels": _json(channels) or {},
            }
        )
    histograms: dict[int, list[int]] = defaultdict(list)
    for interface_id, histogram in _range_rollups(
        first, last, ["interface_id", "latency_histogram"], interface_ids=ids
    ):
        histogram_add(histograms[interface_id], _json(histogram))
    for interface in interfaces:
        interface.days_in_range = found.get(interface.pk, [])
        interface.latency_in_range = histogram_percentiles(histograms[interface.pk], (50, 95))


def catalogue_entries() -> dict[tuple[str, int], System | Interface]:
    """Systems ("s", id) and interfaces ("i", id) with their catalogue facts, for the map's tables."""
    entries: dict[tuple[str, int], System | Interface] = {("s", s.pk): s for s in System.objects.all()}
    entries.update({("i", i.pk): i for i in Interface.objects.all()})
    return entries


def catalogue_rows() -> list[list[str]]:
    """Every system, then every interface, in the catalogue CSV's columns (services.catalogue.CATALOGUE_COLUMNS)."""
    rows = []
    for s in System.objects.order_by("name"):
        rows.append(["system", s.name, *_facts(s)])
    for i in Interface.objects.select_related("source", "target").order_by("source__name", "target__name"):
        rows.append(["interface", f"{i.source.name} {'->'} {i.target.name}", *_facts(i)])
    return rows


def interfaces_silent(*, now: datetime) -> list[dict]:
    """Catalogued interfaces with an expected frequency and no traffic for longer than it (the drift job's input)."""
    found = []
    rows = Interface.objects.filter(expected_every__isnull=False).select_related("source", "target")
    for i in rows.order_by("id"):
        if i.last_seen_at < now - i.expected_every:
            found.append(
                {
                    "id": i.pk,
                    "source": i.source.name,
                    "target": i.target.name,
                    "last_seen_at": i.last_seen_at,
                    "expected_every": i.expected_every,
                    "owner_team": i.owner_team,
                    "owner_queue": i.owner_queue,
                }
            )
    return found


def interfaces_discovered_since(*, since: datetime) -> list[dict]:
    """Interfaces first stored at or after `since`, oldest discovery first (the new-interface notice's input): their
    traffic times, whether the catalogue describes them, their systems' owner queues, and the transaction whose hop
    came first."""
    first_hop = InterfaceHop.objects.filter(interface_id=OuterRef("pk")).order_by("day", "at", "txn_id")
    rows = (
        Interface.objects.filter(discovered_at__gte=since)
        .select_related("source", "target")
        .annotate(first_txn_id=Subquery(first_hop.values("txn_id")[:1]))
        .order_by("discovered_at", "id")
    )
    return [
        {
            "id": i.pk,
            "source": i.source.name,
            "target": i.target.name,
            "first_seen_at": i.first_seen_at,
            "discovered_at": i.discovered_at,
            "catalogued": _catalogued(i),
            "source_queue": i.source.owner_queue,
            "target_queue": i.target.owner_queue,
            "first_txn_id": i.first_txn_id,
        }
        for i in rows
    ]


def _catalogued(obj: System | Interface) -> bool:
    """Whether anyone described it in the catalogue (discovery alone never fills a fact)."""
    return any(
        (
            obj.owner_team,
            obj.owner_queue,
            obj.criticality,
            obj.style,
            obj.environment,
            obj.data_objects,
            obj.notes.strip(),
            getattr(obj, "expected_every", None),
        )
    )


def _facts(obj: System | Interface) -> list[str]:
    every = getattr(obj, "expected_every", None)
    return [
        obj.owner_team,
        obj.owner_queue,
        obj.criticality,
        obj.style,
        obj.environment,
        "; ".join(obj.data_objects),
        obj.notes,
        duration_label(every),
    ]
