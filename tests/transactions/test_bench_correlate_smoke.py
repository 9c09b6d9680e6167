"""The correlation benchmark runs end to end at a tiny size (timings are printed, never asserted)."""

import re

import pytest

from tests.bench.server import run_bench_script


@pytest.mark.postgres(reason="the benchmark refuses anything but PostgreSQL")
@pytest.mark.timeout(300)
def test_the_correlation_benchmark_runs_and_prints_its_figures(db):  # db: the server settings of the test run
    output = run_bench_script("correlate.py", "--events", "3000", "--api-requests", "30")
    stored = re.search(r"events stored:\s+([\d,]+) in ([\d,]+) transactions", output)
    assert stored, output
    assert int(stored[1].replace(",", "")) >= 3000 and int(stored[2].replace(",", "")) > 0
    for figure in ("ingest + correlate:", "correlation only:", "ratio (target < 1.5):", "search by business key API:"):
        assert figure in output, figure
    # The tasks correlation hands on ran, each timed: SLA evaluation and reconciliation see every transaction.
    assert re.search(r"evaluate_transactions:\s+[\d,]+ ms per 1,000 events", output), output
    assert re.search(r"reconcile_transactions:\s+[\d,]+ ms per 1,000 events", output), output
    assert "correlation + handed-on:" in output
