"""Ingest endpoints: OTLP/HTTP (/v1/traces, /v1/logs), CloudEvents and the native batch API.

They only authenticate, read the body within its limit, decode, and hand the records to `records_ingest`, which
stores them in one transaction and enqueues correlation: the request stays fast and nothing half-written remains.
"""

import logging
from typing import Any

from django.db import DatabaseError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.lib.api import RETRY_AFTER_SECONDS, STORAGE_UNAVAILABLE
from transactions import cloudevents, native, otlp
from transactions.api.auth import IngestSourceThrottle, IngestTokenAuthentication, IsIngestSource
from transactions.choices import Channel
from transactions.ingest_http import BodyTooLarge, UnsupportedEncoding, media_type, read_body
from transactions.records import BodyDecodeError
from transactions.services import body_dead_letter, records_ingest

logger = logging.getLogger(__name__)


class _IngestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _JsonOnly(BaseContentNegotiation):
    """Ingest answers JSON (OTLP: its own encoding) whatever the sender accepts: machines post here, nobody browses,
    and parsing each request's Accept header against the browsable renderer was a twentieth of a single event's CPU."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class IngestView(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [IsIngestSource]
    throttle_classes = [IngestSourceThrottle]
    parser_classes: list = []  # bodies are read by read_body, with our limit, never by DRF or Django
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JsonOnly
    channel = ""

    def read(self, request: Request) -> bytes:
        try:
            return read_body(request._request)
        except BodyTooLarge as exc:
            raise _IngestError(413, str(exc)) from exc
        except UnsupportedEncoding as exc:
            raise _IngestError(415, str(exc)) from exc
        except ValueError as exc:
            raise _IngestError(400, str(exc)) from exc

    def reject_body(self, request: Request, body: bytes, exc: Exception) -> None:
        body_dead_letter(source=request.auth, channel=self.channel, body=body, reason=str(exc))
        raise _IngestError(400, str(exc)) from exc

    def error_response(self, status: int, message: str) -> HttpResponse:
        return Response({"detail": message}, status=status)

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, _IngestError):
            return self.error_response(exc.status, str(exc))
        if isinstance(exc, (DatabaseError, *STORAGE_UNAVAILABLE)):
            # Storage unreachable or failing: a retryable answer, so that senders keep the batch and come back.
            logger.exception("ingest.database_error", extra={"channel": self.channel})
            response = self.error_response(503, "storage temporarily unavailable; retry later")
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        if isinstance(exc, exceptions.APIException):
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                exc.status_code = 401
            response = self.error_response(exc.status_code, str(exc.detail))
            if isinstance(exc, exceptions.Throttled):
                response["Retry-After"] = str(max(1, int(exc.wait or 1)))
            if exc.status_code == 401:
                response["WWW-Authenticate"] = IngestTokenAuthentication().authenticate_header(self.request)
            return response
        return super().handle_exception(exc)


ingest_result = inline_serializer(
    "IngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": inline_serializer(
            "RejectedRecord", {"index": serializers.IntegerField(), "error": serializers.CharField()}, many=True
        ),
    },
)
ERROR_RESPONSES = {
    400: OpenApiResponse(description="undecodable body (kept in the dead-letter store)"),
    401: OpenApiResponse(description="no or invalid ingest token"),
    413: OpenApiResponse(description="body over the byte limit (also after gzip) or over 10,000 records"),
    415: OpenApiResponse(description="unsupported Content-Type or Content-Encoding"),
    429: OpenApiResponse(description="rate limit of the ingest source; see Retry-After"),
    503: OpenApiResponse(description="storage unavailable; see Retry-After"),
}


def _result(outcome: Any) -> Response:
    return Response(
        {
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": [{"index": index, "error": error} for index, error in outcome.rejected],
        }
    )


class NativeEventsView(IngestView):
    """Canonical finance events: a JSON array (or NDJSON) of up to 10,000 records."""

    channel = Channel.NATIVE

    @extend_schema(
        operation_id="events_ingest",
        request={
            # An array of canonical events (a single object is taken as a batch of one); NDJSON: one per line.
            "application/json": {"type": "array", "items": {"type": "object"}, "maxItems": 10000},
            "application/x-ndjson": OpenApiTypes.STR,
        },
        responses={200: ingest_result, **ERROR_RESPONSES},
        tags=["ingest"],
    )
    def post(self, request: Request) -> Response:
        content_type = media_type(request._request)
        if content_type not in native.JSON_TYPES:
            raise _IngestError(415, "Content-Type must be application/json or application/x-ndjson")
        body = self.read(request)
        try:
            records = native.decode_native(body, content_type=content_type)
        except native.TooManyRecords as exc:
            raise _IngestError(413, str(exc)) from exc
        except BodyDecodeError as exc:
            self.reject_body(request, body, exc)
        return _result(records_ingest(source=request.auth, channel=self.channel, records=records))


class CloudEventsView(IngestView):
    """CloudEvents 1.0 over HTTP: structured, batch and binary modes."""

    channel = Channel.CLOUDEVENTS

    @extend_schema(
        operation_id="cloudevents_ingest",
        request={
            "application/cloudevents+json": OpenApiTypes.OBJECT,
            "application/cloudevents-batch+json": {"type": "array", "items": {"type": "object"}},
            "application/json": OpenApiTypes.OBJECT,
        },
        responses={200: ingest_result, **ERROR_RESPONSES},
        tags=["ingest"],
    )
    def post(self, request: Request) -> Response:
        body = self.read(request)
        try:
            records = cloudevents.decode_cloudevents(
                body, content_type=request.META.get("CONTENT_TYPE", ""), headers=request.headers
            )
        except cloudevents.UnsupportedMediaType as exc:
            raise _IngestError(415, str(exc)) from exc
        except BodyDecodeError as exc:
            self.reject_body(request, body, exc)
        if len(records) > native.MAX_RECORDS:
            raise _IngestError(413, f"{len(records)} events in one request; the limit is {native.MAX_RECORDS}")
        return _result(records_ingest(source=request.auth, channel=self.channel, records=records))


# google.rpc.Code values used in OTLP error bodies.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class OtlpView(IngestView):
    """OTLP/HTTP export, protobuf or JSON, answered in the request's own encoding as the specification requires."""

    signal = ""

    def response_type(self) -> str:
        content_type = media_type(self.request._request)
        return otlp.CONTENT_TYPE_JSON if content_type == otlp.CONTENT_TYPE_JSON else otlp.CONTENT_TYPE_PROTOBUF

    def error_response(self, status: int, message: str) -> HttpResponse:
        content_type = self.response_type()
        body = otlp.encode_status(code=_RPC_CODES.get(status, 2), message=message, content_type=content_type)
        return HttpResponse(body, status=status, content_type=content_type)

    def post(self, request: Request) -> HttpResponse:
        content_type = media_type(request._request)
        wrong_type = _IngestError(415, "Content-Type must be application/x-protobuf or application/json")
        if content_type and content_type not in (otlp.CONTENT_TYPE_PROTOBUF, otlp.CONTENT_TYPE_JSON):
            raise wrong_type
        body = self.read(request)
        if not content_type:
            # Only an empty export request may omit its type (it is a success); a chunked body has no length to tell.
            if body:
                raise wrong_type
            content_type = otlp.CONTENT_TYPE_PROTOBUF
        decode = otlp.decode_traces if self.signal == "traces" else otlp.decode_logs
        try:
            records = decode(body, content_type=content_type)
        except BodyDecodeError as exc:
            self.reject_body(request, body, exc)
        outcome = records_ingest(source=request.auth, channel=self.channel, records=records)
        message = ""
        if outcome.rejected:
            shown = "; ".join(f"#{index}: {error}" for index, error in outcome.rejected[:5])
            more = f" (and {len(outcome.rejected) - 5} more)" if len(outcome.rejected) > 5 else ""
            message = f"{len(outcome.rejected)} rejected: {shown}{more}"
        payload = otlp.encode_response(
            signal=self.signal, rejected=len(outcome.rejected), message=message, content_type=content_type
        )
        return HttpResponse(payload, status=200, content_type=content_type)


otlp_schema = extend_schema(
    request={"application/x-protobuf": OpenApiTypes.BINARY, "application/json": OpenApiTypes.OBJECT},
    responses={200: OpenApiResponse(description="Export*ServiceResponse, with partial_success"), **ERROR_RESPONSES},
    tags=["ingest"],
)


class OtlpTracesView(OtlpView):
    signal = "traces"
    channel = Channel.OTLP_TRACES

    @extend_schema(operation_id="otlp_traces_export")
    @otlp_schema
    def post(self, request: Request) -> HttpResponse:
        return super().post(request)


class OtlpLogsView(OtlpView):
    signal = "logs"
    channel = Channel.OTLP_LOGS

    @extend_schema(operation_id="otlp_logs_export")
    @otlp_schema
    def post(self, request: Request) -> HttpResponse:
        return super().post(request)
