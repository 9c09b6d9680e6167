"""make bench-map at a tiny size: the generator, the map rebuild and every timed page work (no time asserted)."""

import io

import pytest
from django.core.management import call_command

from tests.bench import map as bench_map
from transactions.models import Event, Interface, InterfaceDaily, InterfaceHop


@pytest.mark.django_db
def test_bench_map_runs_at_a_tiny_size():
    call_command("load_reference_data", stdout=io.StringIO())
    results = bench_map.run(events=400, days=10, requests=2, seed=3)
    assert Event.objects.count() == 400
    assert results["counts"]["hops"] == InterfaceHop.objects.count() > 0
    assert results["counts"]["daily_rows"] == InterfaceDaily.objects.count() > 0
    assert Interface.objects.count() > 10  # the chains' hand-overs: an estate, not a pair
    assert all(len(samples) == 2 for samples in results["pages"].values())
    assert {"map, 7 days GET /map/", "interfaces API, a year", "systems API, a year GET /api/v1/systems/"} <= set(
        results["pages"]
    )
    lines = bench_map.report_lines(results)
    assert any(line.startswith("map rebuild") for line in lines)
    assert any(line.startswith("rollups alone") for line in lines)
    assert sum("p95" in line for line in lines) == len(results["pages"])
