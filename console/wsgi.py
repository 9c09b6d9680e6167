"""WSGI entry point for gunicorn: `gunicorn console.wsgi`."""

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import NoReverseMatch, URLResolver, reverse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

# The ingest endpoints, which machines post to with a bearer token, and the middleware they need: the request span,
# the transport security (HTTPS redirect, HSTS, nosniff) and the host check. The rest serves the console's pages
# (sessions, CSRF, sign-in, messages, htmx, axes' lockout page, CSP and framing of HTML, static files) and was a
# tenth of a single-event request's CPU; the ingest views are CSRF-exempt and authenticate and throttle themselves.
INGEST_PATHS = frozenset({"/api/v1/events", "/api/v1/cloudevents", "/v1/traces", "/v1/logs"})
INGEST_MIDDLEWARE = [
    "console.lib.telemetry.RequestSpanMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]


class _IngestHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        from django.conf import settings

        pages = settings.MIDDLEWARE
        settings.MIDDLEWARE = INGEST_MIDDLEWARE  # Django builds the chain from the setting only: for this handler
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = pages


class _Application:
    """Django's WSGI handler, with the ingest endpoints served through their own short middleware chain."""

    def __init__(self) -> None:
        self.pages = get_wsgi_application()
        self.ingest = _IngestHandler()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        handler = self.ingest if environ.get("PATH_INFO") in INGEST_PATHS else self.pages
        return handler(environ, start_response)


application = _Application()

logger = logging.getLogger("console.wsgi")


def warm_up() -> None:
    """Pay a worker's one-time costs as it starts, not on its first request: the URL patterns and the views they
    import, the reverse lookup tables of every namespace, plotly.py's JSON encoder and figure template, every page
    template compiled (the cached loader keeps them), the database connection opened. A fresh worker answered its
    first dashboard request in 660-900 ms against about 300 ms later; populating the reverse tables alone took a
    fresh worker's first /slas/ from 2.5 to 0.85 s on a loaded machine. Failures only log: a database still
    starting must not keep the worker from serving."""
    from django.conf import settings
    from django.db import connection
    from django.template import TemplateDoesNotExist, TemplateSyntaxError
    from django.template.loader import get_template
    from django.urls import get_resolver

    from console.lib.charts import figure_html, figure_template

    began = time.perf_counter()
    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 (imports every view module)
    _populate_reverse_lookups(resolver, "")
    figure_template()
    figure_html([{"type": "bar", "x": [0], "y": [0]}], {})
    templates = 0
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(directory).rglob("*.html")):
            try:
                get_template(str(path.relative_to(directory)))
                templates += 1
            except (TemplateDoesNotExist, TemplateSyntaxError) as exc:
                logger.warning("wsgi.warm_up_template_failed", extra={"template": str(path), "error": str(exc)})
    try:
        connection.ensure_connection()
    except Exception as exc:  # any database fault: the first request reports it
        logger.warning("wsgi.warm_up_database_unreachable", extra={"error": str(exc)})
    finally:
        if not connection.in_atomic_block:  # (a caller's transaction, as in tests, keeps its connection)
            connection.close()  # back to the pool: the worker's request threads take connections from there
    logger.info("wsgi.warmed_up", extra={"templates": templates, "seconds": round(time.perf_counter() - began, 3)})


def _populate_reverse_lookups(resolver: URLResolver, namespace: str) -> None:
    # reverse() fills a namespace's tables on its first lookup in it (Django's resolvers are lazy); a name that does
    # not exist fills them without matching anything.
    with contextlib.suppress(NoReverseMatch):
        reverse(f"{namespace}{WARM_UP_NAME}")
    for name, (_prefix, child) in resolver.namespace_dict.items():
        _populate_reverse_lookups(child, f"{namespace}{name}:")


WARM_UP_NAME = "closeloop-warm-up-no-such-view"

if os.environ.get("WARM_UP", "1") != "0":
    warm_up()
