import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict

from console.lib.audit import GENESIS_HASH, AuditEntry
from console.lib.exports import Keyset, audited_csv_export, csv_response, export_rows, safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "  =HYPERLINK()", "\nx"])
def test_formula_cells_are_neutralised(text):
    assert safe_cell(text).startswith("'")


@pytest.mark.parametrize("value", ["ACME-01", "C-1001", "", "a=b", -5, Decimal("-1.50"), 3.5])
def test_plain_values_pass(value):
    assert safe_cell(value) == value


def test_nul_is_removed_and_none_is_empty():
    assert safe_cell("a\x00b") == "ab" and safe_cell(None) == ""


def test_streamed_csv_round_trips():
    response = csv_response("x.csv", ["a", "b"], iter([["=evil", 1], ["ok", None]]))
    text = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(text))) == [["a", "b"], ["'=evil", "1"], ["ok", ""]]
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'


# ---- Keyset pagination, audited exports ------------------------------------------------------------------------------

T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)


def _entries(stamps: list[int]) -> list[AuditEntry]:
    """Audit entries at T0 + the given minutes (ties on purpose), written directly so their times are known."""
    made = []
    for n, minutes in enumerate(stamps):
        entry = AuditEntry(occurred_at=T0 + timedelta(minutes=minutes), actor="system:test", action="x.y")
        entry.prev_hash, entry.entry_hash = GENESIS_HASH, f"{n:064x}"
        entry.save(force_insert=True)
        made.append(entry)
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_keyset_pages_walk_every_row_once_in_order(size):
    entries = _entries([3, 1, 1, 2, 1, 3, 0])
    keyset = Keyset("occurred_at", "-id")  # ascending, then descending among ties
    expected = [e.pk for e in sorted(entries, key=lambda e: (e.occurred_at, -e.pk))]
    seen, cursor, pages = [], None, 0
    while True:
        rows, cursor = keyset.page(AuditEntry.objects.filter(action="x.y"), cursor=cursor, size=size)
        seen += [r.pk for r in rows]
        pages += 1
        if cursor is None:
            break
    assert seen == expected
    assert pages == -(-len(entries) // size)


@pytest.mark.django_db
def test_a_keyset_cursor_names_the_row_and_a_bad_one_means_the_first_page():
    first, second = _entries([0, 0])
    keyset = Keyset("-occurred_at", "-id")
    assert keyset.cursor_of(second) == f"{second.occurred_at.isoformat()}_{second.pk}"
    mine = AuditEntry.objects.filter(action="x.y")
    assert list(keyset.after(mine, keyset.cursor_of(second))) == [first]
    everything = AuditEntry.objects.all()
    for bad in ("", "nonsense", "2026-13-01T00:00:00_1", "x_y_z", f"{T0.isoformat()}_abc"):
        assert keyset.after(everything, bad) is everything, bad


def test_a_keyset_refuses_a_null_value():
    with pytest.raises(ValueError, match="resolved_at"):
        Keyset("resolved_at").cursor_of(type("Row", (), {"resolved_at": None})())


@pytest.mark.django_db
def test_an_audited_export_records_who_took_what_and_streams_it():
    response = audited_csv_export(
        actor="user:carla",
        action="cases.exported",
        object_type="exceptions.case",
        params=QueryDict("status=open&format=csv&assignee=none"),
        filename="cases-billing.csv",
        header=["id", "title"],
        rows=iter([[1, "=cmd"], [2, "fine"]]),
        context={"queue": "billing"},
    )
    entry = AuditEntry.objects.get(action="cases.exported")
    assert (entry.actor, entry.object_type) == ("user:carla", "exceptions.case")
    assert entry.after == {"queue": "billing", "filters": {"status": "open", "assignee": "none"}}
    text = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(text))) == [["id", "title"], ["1", "'=cmd"], ["2", "fine"]]
    assert response["Content-Disposition"] == 'attachment; filename="cases-billing.csv"'


@pytest.mark.django_db
def test_export_rows_stop_at_the_limit():
    _entries([0, 1, 2, 3])
    mine = AuditEntry.objects.filter(action="x.y").order_by("id")
    rows = list(export_rows(mine, lambda e: [e.pk, e.action], limit=3, chunk_size=2))
    assert rows == [[pk, "x.y"] for pk in mine.values_list("id", flat=True)[:3]]
