"""What makes a page fast to first show: the figure template once per page, a worker warmed up before its first
request."""

import json
import logging
from pathlib import Path

from django.conf import settings

from console.lib.charts import figure_html


def test_figures_leave_the_shared_template_to_the_page(client, role_user):
    fragment = figure_html([{"type": "bar", "x": [1], "y": [2]}], {"title": {"text": "t"}})
    assert "plotly_white" not in fragment and "colorway" not in fragment
    client.force_login(role_user("manager"))
    page = client.get("/slas/").content.decode()
    assert page.count('id="cl-figure-template"') == 1
    start = page.index('id="cl-figure-template"')
    block = page[page.index(">", start) + 1 : page.index("</script>", start)]
    assert "colorway" in json.loads(block)["layout"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_worker_compiles_every_template_and_opens_its_database_before_serving(db):
    from console.wsgi import logger, warm_up

    records = _Records()
    logger.addHandler(records)
    try:
        warm_up()
    finally:
        logger.removeHandler(records)
    record = next(r for r in records.records if r.msg == "wsgi.warmed_up")
    expected = sum(len(list(Path(d).rglob("*.html"))) for d in settings.TEMPLATES[0]["DIRS"])
    assert record.templates == expected > 50
    assert not [r for r in records.records if r.levelno >= logging.WARNING]


def test_a_worker_fills_the_reverse_lookup_tables_before_serving(db):
    """A fresh worker's first page with links paid for Django's lazy reverse tables: 0.5 s of a 2.5 s first /slas/."""
    from unittest import mock

    from django.urls import URLResolver, clear_url_caches, reverse

    from console.wsgi import warm_up

    clear_url_caches()
    warm_up()
    with mock.patch.object(URLResolver, "_populate", side_effect=AssertionError("reverse tables filled on demand")):
        assert reverse("sla-definition-edit", args=[7]) == "/slas/definitions/7/"
        assert reverse("home") == "/"
