"""Static files: hashed names served compressed with far-future caching, so a second page load fetches nothing."""

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.templatetags.static import static

from tests.factories import PASSWORD

FOREVER = "max-age=315360000"


@pytest.fixture
def plotly_url() -> str:
    url = static("vendor/plotly/plotly.min.js")
    # The manifest storage names the file after its content (collectstatic ran before the tests).
    assert url != "/static/vendor/plotly/plotly.min.js" and url.endswith(".js"), url
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
    # plotly.min.js is about 4.8 MB; compressed it must be well under a third of that.
    size = staticfiles_storage.size(staticfiles_storage.stored_name("vendor/plotly/plotly.min.js"))
    assert size > 3_000_000 and len(body) < size / 3


def test_uncompressed_when_not_asked(client, plotly_url):
    response = client.get(plotly_url)
    assert "Content-Encoding" not in response
    assert int(response["Content-Length"]) > 3_000_000


def test_chart_pages_reference_hashed_assets(client, role_user, plotly_url):
    user = role_user("manager")
    assert client.login(username=user.username, password=PASSWORD)
    html = client.get("/slas/").content.decode()
    assert plotly_url in html and static("js/drilldown.js") in html
