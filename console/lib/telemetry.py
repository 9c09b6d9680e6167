"""Closeloop's own OpenTelemetry instrumentation (a no-op unless an SDK is configured by the deployment)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

tracer = trace.get_tracer("closeloop")


class RequestSpanMiddleware:
    """Wraps each request in a SERVER span named after its route template (low cardinality, no ids)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with tracer.start_as_current_span(
            # The route is only known after URL resolution; the name is refined below.
            request.method or "HTTP",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method or "", "url.scheme": request.scheme or "http"},
        ) as span:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            if match is not None and match.route:
                span.update_name(f"{request.method} /{match.route}")
                span.set_attribute("http.route", f"/{match.route}")
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response
