"""The exceptions benchmark runs end to end at a tiny size (timings are printed, never asserted)."""

import pytest

from tests.bench.server import run_bench_script


@pytest.mark.postgres(reason="the benchmark refuses anything but PostgreSQL")
@pytest.mark.timeout(300)
def test_the_exceptions_benchmark_runs_and_prints_its_figures(db):  # db: the server settings of the test run
    output = run_bench_script("exceptions.py", "--events", "1000", "--cases", "1000", "--page-requests", "10")
    assert "ingested and correlated 1,000 failed events" in output, output
    for figure in ("classify + group:", "cases in the store:", "API /api/v1/cases/?queue=&status=open", "audit chain:"):
        assert figure in output, figure
    assert "audit chain:              intact" in output, output
