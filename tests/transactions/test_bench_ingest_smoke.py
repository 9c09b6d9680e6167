"""The ingest benchmark's module runs end to end at a tiny size (timings are printed, never asserted)."""

import pytest
from django.db import connection

from tests.bench import ingest as bench
from transactions.models import Event


@pytest.mark.postgres
def test_the_ingest_benchmark_runs_and_prints_its_figures(transactional_db, live_server, source, token, settings):
    settings.INGEST_THROTTLE_RATE = "100000/second"
    figures = bench.measure_api(live_server.url, token, singles=8, batches=1, otlp=1, cloudevents=1)
    assert Event.objects.count() == 8 + 8 + 1000 + 500 + 500  # the warm-up's 8 too: every request stored
    params = connection.get_connection_params()
    user, host, port = params.get("user") or "postgres", params.get("host") or "127.0.0.1", params.get("port") or 5432
    url = f"postgresql://{user}@{host}:{port}/{params['dbname']}"
    references = bench.measure_references(url, singles=8, batch_rows=1000)
    lines: list[str] = []
    ratios = bench.report(figures, references, [100.0], write=lines.append)
    text = "\n".join(lines)
    assert "INSERT + COMMIT" in text and "binary COPY" in text and "web worker RSS: 100 MB" in text
    assert set(ratios) == {"single_ratio", "native_ratio", "otlp_ratio", "cloudevents_ratio"}
    assert all(value > 0 for value in ratios.values())
