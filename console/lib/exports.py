"""Big lists, page by page and as CSV: keyset cursors, audited exports, and cells spreadsheets cannot turn into formulas
(OWASP ASVS 5.0 V1.2.10)."""

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import StreamingHttpResponse

from console.lib.audit import audit_record

M = TypeVar("M", bound=Model)
# An export is a file for a spreadsheet or an auditor, not a backup: past this many rows, filter first.
EXPORT_LIMIT = 100_000

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice or Google Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\x00")


def safe_cell(value: object) -> object:
    """Numbers stay numbers; text that a spreadsheet would evaluate is prefixed with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value).replace("\x00", "")
    if text.startswith(FORMULA_TRIGGERS) or text.lstrip().startswith(FORMULA_TRIGGERS[:4]):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    """Stream the rows (an iterator, so big lists never sit in memory) as a CSV attachment."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class Keyset:
    """Keyset ("seek") pagination over an ordering whose last field is unique: `Keyset("priority", "-last_seen",
    "-id")`. A page never costs an OFFSET, and rows that arrive meanwhile do not shift the next page.

    A cursor is the last row's values joined by `_` (datetimes in ISO 8601), so the fields must be non-null and of a
    kind whose text has no underscore: numbers, dates, times.
    """

    def __init__(self, *fields: str) -> None:
        if not fields:
            raise ValueError("a keyset needs at least one field")
        self.fields = fields

    def cursor_of(self, obj: Model) -> str:
        """The cursor naming `obj`'s place in the ordering (the page after it starts after it)."""
        parts = []
        for name in self.fields:
            value = getattr(obj, name.lstrip("-"))
            if value is None:
                raise ValueError(f"keyset field {name.lstrip('-')!r} is None on {obj!r}")
            parts.append(value.isoformat() if isinstance(value, datetime | date | time) else str(value))
        return "_".join(parts)

    def _values(self, model: type[Model], cursor: str) -> list[Any] | None:
        parts = cursor.split("_")
        if len(parts) != len(self.fields):
            return None
        try:
            return [
                model._meta.get_field(name.lstrip("-")).to_python(part)
                for name, part in zip(self.fields, parts, strict=True)
            ]
        except (ValidationError, ValueError, TypeError):
            return None

    def after(self, queryset: QuerySet[M], cursor: str) -> QuerySet[M]:
        """The rows after the cursor's row in this ordering; a cursor that does not parse means the first page."""
        values = self._values(queryset.model, cursor)
        if values is None:
            return queryset
        condition = Q()
        for i, name in enumerate(self.fields):
            # Equal on every field before this one, and past the cursor on this one.
            column, descending = name.lstrip("-"), name.startswith("-")
            step = Q(**{f"{column}__{'lt' if descending else 'gt'}": values[i]})
            for earlier, value in zip(self.fields[:i], values[:i], strict=True):
                step &= Q(**{earlier.lstrip("-"): value})
            condition |= step
        # The same rows, bounded on the first field too: the OR above is no index condition, this range is, so a late
        # page starts its index scan at the cursor instead of filtering every row before it.
        first, descending = self.fields[0].lstrip("-"), self.fields[0].startswith("-")
        bound = Q(**{f"{first}__{'lte' if descending else 'gte'}": values[0]})
        return queryset.filter(bound & condition)

    def page(self, queryset: QuerySet[M], *, cursor: str | None, size: int) -> tuple[list[M], str | None]:
        """One page in this ordering (after `cursor`, if any) and the cursor of the next page (None on the last)."""
        ordered = queryset.order_by(*self.fields)
        rows = list((self.after(ordered, cursor) if cursor else ordered)[: size + 1])
        next_cursor = self.cursor_of(rows[size - 1]) if len(rows) > size else None
        return rows[:size], next_cursor


def export_rows(
    queryset: QuerySet[M], row: Callable[[M], Sequence[object]], *, limit: int = EXPORT_LIMIT, chunk_size: int = 2000
) -> Iterator[Sequence[object]]:
    """The queryset's rows (at most `limit`) as CSV rows, read in chunks so a big export never sits in memory."""
    for obj in queryset[:limit].iterator(chunk_size=chunk_size):
        yield row(obj)


def audited_csv_export(
    *,
    actor: str,
    action: str,
    object_type: str,
    params: Mapping[str, str],
    filename: str,
    header: list[str],
    rows: Iterable[Iterable[object]],
    context: Mapping[str, Any] | None = None,
) -> StreamingHttpResponse:
    """Record who exported what (the list's filters from `params`, plus `context` such as the queue), then stream it.

    An export takes data out of the audited system, so it is an action like any other (ARCHITECTURE: audit trail).
    """
    filters = {key: value for key, value in params.items() if key != "format"}
    audit_record(actor=actor, action=action, object_type=object_type, after={**(context or {}), "filters": filters})
    return csv_response(filename, header, rows)
