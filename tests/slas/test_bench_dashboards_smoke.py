"""make bench-dashboards at a tiny size: the generator, the rebuild and every timed page work (no time asserted)."""

import io

import pytest
from django.core.management import call_command

from slas.models import DailyRollup, SlaClock
from tests.bench import dashboards
from transactions.models import Event


@pytest.mark.django_db
def test_bench_dashboards_runs_at_a_tiny_size():
    call_command("load_reference_data", stdout=io.StringIO())
    results = dashboards.run(events=300, clocks=30, days=20, requests=2, seed=3)
    assert Event.objects.count() == 300 and SlaClock.objects.count() == 30
    assert results["rollup_rows"] == DailyRollup.objects.count() > 0
    assert set(results["pages"]) >= {"SLA dashboard GET /slas/", "ROI dashboard GET /roi/", "manager home GET /"}
    assert all(len(samples) == 2 for samples in results["pages"].values())
    lines = dashboards.report_lines(results)
    assert any(line.startswith("rollup rebuild") for line in lines)
