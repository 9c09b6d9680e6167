"""Static files: hashed names served compressed with far-future caching, so a second page load fetches nothing."""

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.templatetags.static import static

from tests.factories import PASSWORD

FOREVER = "max-age=315360000"


@pytest.fixture
def plotly_url() -> str:
    url = static("vendor/plotly/plotly-basic.min.js")
    # The manifest storage names the file after its content (collectstatic ran before the tests).
    assert url != "/static/vendor/plotly/plotly-basic.min.js" and url.endswith(".js"), url
    return url


def test_hashed_plotly_is_cached_forever(client, plotly_url):
    response = client.get(plotly_url)
    assert response.status_code == 200
    assert FOREVER in response["Cache-Control"] and "immutable" in response["Cache-Control"]


@pytest.mark.parametrize(("accept", "encoding"), [("gzip", "gzip"), ("br", "br"), ("gzip, deflate, br", "br")])
def test_plotly_is_served_compressed_when_asked(client, plotly_url, accept, encoding):
    response = client.get(plotly_url, HTTP_ACCEPT_ENCODING=accept)
    assert response.status_code == 200
    assert response["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response["Vary"]
    body = b"".join(response.streaming_content)
    # The basic bundle is about 1.2 MB; compressed it must be well under a third of that.
    size = staticfiles_storage.size(staticfiles_storage.stored_name("vendor/plotly/plotly-basic.min.js"))
    assert size > 1_000_000 and len(body) < size / 3


def test_uncompressed_when_not_asked(client, plotly_url):
    response = client.get(plotly_url)
    assert "Content-Encoding" not in response
    assert int(response["Content-Length"]) > 1_000_000


def test_chart_pages_reference_hashed_assets(client, role_user, plotly_url):
    user = role_user("manager")
    assert client.login(username=user.username, password=PASSWORD)
    html = client.get("/slas/").content.decode()
    assert plotly_url in html and static("js/drilldown.js") in html


def test_vendored_plotly_js_is_the_version_the_plotly_package_writes_figures_for():
    import re
    from pathlib import Path

    import plotly

    def version(path: Path) -> str:
        return re.search(r"plotly\.js .*?v(\d+\.\d+\.\d+)", path.read_text(encoding="utf-8")[:300]).group(1)

    package = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    vendored = Path(__file__).resolve().parents[2] / "static" / "vendor" / "plotly" / "plotly-basic.min.js"
    # After upgrading plotly: `npm pack plotly.js-basic-dist-min@<the new version>` into static/vendor/plotly.
    assert version(vendored) == version(package)


def test_every_trace_the_console_draws_is_in_the_basic_bundle(monkeypatch):
    from datetime import UTC, datetime

    from console.charts import activity_chart
    from console.lib import charts
    from transactions.charts import process_status_chart, timeline_chart

    drawn = []
    monkeypatch.setattr(
        charts.pio, "to_json", lambda figure, **kw: drawn.extend(t["type"] for t in figure["data"]) or "{}"
    )
    now = datetime(2026, 5, 18, tzinfo=UTC)
    item = {"id": 1, "kind": "k", "system": "s", "status": "ok", "start": now, "duration_ms": 5, "critical": False}
    activity_chart([{"family": "case", "day": now.date(), "count": 1}])
    process_status_chart([{"process__name": "p", "status": "completed", "n": 1}])
    timeline_chart({"items": [{**item, "is_span": True}, {**item, "is_span": False}], "gaps": [], "lanes": ["s"]})
    assert set(drawn) == {"bar", "scatter"}  # plotly.js-basic-dist: bar, scatter, pie
