import csv
import io
from decimal import Decimal

import pytest

from console.lib.exports import csv_response, safe_cell


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
