"""Server error pages: a storage fault is a 503 with Retry-After on the pages too, as on the API.

Django calls the 500 handler for any exception a view (or a middleware) let through, while that exception is being
handled, so it can be told apart here: a lost database connection, a pool or lock wait that timed out will pass, and
the answer says so instead of "server error"; a browser, a monitor or a proxy can retry.
"""

import logging
import sys

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error

from console.lib.api import RETRY_AFTER_SECONDS, STORAGE_UNAVAILABLE

logger = logging.getLogger(__name__)


def handler500(request: HttpRequest) -> HttpResponse:
    fault = sys.exc_info()[1]
    if not isinstance(fault, STORAGE_UNAVAILABLE):
        return server_error(request)
    logger.warning("page.storage_unavailable", extra={"error": type(fault).__name__, "path": request.path})
    # Rendered without the request: the console's shell reads the user and the navigation from the database.
    body = render_to_string("storage_unavailable.html", {"retry_after": RETRY_AFTER_SECONDS})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
