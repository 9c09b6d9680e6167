"""WSGI entry point for gunicorn: `gunicorn console.wsgi`."""

import logging
import os
import time
from pathlib import Path

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()

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
