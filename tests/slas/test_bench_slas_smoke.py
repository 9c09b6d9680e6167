"""The SLA benchmark's module runs end to end at a tiny size (timings are printed, never asserted)."""

import re

from slas.reference import slas_reference_data_load
from tests.bench import slas as bench


def test_the_slas_benchmark_runs_and_prints_its_figures(reference):
    slas_reference_data_load()
    lines: list[str] = []
    figures = bench.run(clocks=40, monitors=12, events=300, write=lines.append)
    text = "\n".join(lines)
    assert "clocks/s" in text and "baseline SELECT of the same 40 rows" in text
    # The 12 of the benchmark and the reference data's defaults.
    assert re.search(r"pass over \d+ monitors", text) and "baseline GROUP BY" in text
    assert set(figures) >= {"clock_pass_seconds", "clocks_per_second", "volume_pass_seconds"}
