"""WSGI entry point for gunicorn: `gunicorn console.wsgi`."""

import logging
import os
import time
from pathlib import Path
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

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
    import, every page template compiled (the cached loader keeps them), the database connection opened. A fresh
    worker answered its first dashboard request in 660-900 ms against about 300 ms later. Failures only log: a
    database still starting must not keep the worker from serving."""
    from django.conf import settings
    from django.db import connection
    from django.template import TemplateDoesNotExist, TemplateSyntaxError
    from django.template.loader import get_template
    from django.urls import get_resolver

    began = time.perf_counter()
    get_resolver().url_patterns  # noqa: B018 (imports every view module)
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


if os.environ.get("WARM_UP", "1") != "0":
    warm_up()
