"""The reconciliation benchmark runs end to end at a tiny size (timings are printed, never asserted)."""

import re

import pytest

from tests.bench.server import run_bench_script


@pytest.mark.postgres(reason="the benchmark refuses anything but PostgreSQL")
@pytest.mark.timeout(300)
def test_the_reconciliation_benchmark_runs_and_prints_its_figures(db):  # db: the server settings of the test run
    output = run_bench_script("reconcile.py", "--events", "3000", "--page-requests", "2")
    stored = re.search(r"events stored:\s+([\d,]+) in ([\d,]+) transactions", output)
    assert stored, output
    assert int(stored[1].replace(",", "")) >= 3000 and int(stored[2].replace(",", "")) > 0
    verdicts = re.search(r"rules active:\s+(\d+); results ([\d,]+):.*matched ([\d,]+)", output)
    assert verdicts and int(verdicts[1]) >= 5 and int(verdicts[2].replace(",", "")) > 0, output
    for figure in (
        "reconciliation only:",
        "per-batch reconciliation at 300 events:",
        "per-batch reconciliation at 3,000 events:",
        "ratio (target <= 1.5):",
        "reconciliation page:",
        "ROI dashboard:",
        "load average",
    ):
        assert figure in output, figure
