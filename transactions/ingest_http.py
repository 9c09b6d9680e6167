"""Reading ingest request bodies within limits, before anything is parsed.

Django's own body limit (2.5 MiB) is far below OTLP batch sizes and gunicorn enforces none, so the stream is read here
with our limit, and gzip is inflated with a bounded decompressor: a gzip bomb stops at the limit, not at the memory.
"""

import zlib
from typing import Any

from django.conf import settings
from django.http import HttpRequest

CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    """The body (or its decompressed form) exceeds INGEST_MAX_BODY_BYTES (HTTP 413)."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding other than gzip or identity (HTTP 415)."""


def read_body(request: HttpRequest, *, limit: int | None = None) -> bytes:
    """The request body, decompressed when gzip-encoded, never more than `limit` bytes either way."""
    limit = limit or settings.INGEST_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    stream = _body_stream(request)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    out = bytearray()
    received = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        if inflater is None:
            out += chunk
            continue
        try:
            out += inflater.decompress(chunk, limit + 1 - len(out))
            # Output left inside the inflater means the limit was reached: stop without inflating the rest.
            if len(out) > limit or inflater.unconsumed_tail:
                raise BodyTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
        except zlib.error as exc:
            raise ValueError(f"body is not valid gzip: {exc}") from exc
    if inflater is not None:
        try:
            out += inflater.flush()
        except zlib.error as exc:
            raise ValueError(f"body is not valid gzip: {exc}") from exc
        if received and not inflater.eof:
            raise ValueError("body is not valid gzip: stream is truncated")
        if len(out) > limit:
            raise BodyTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
    return bytes(out)


def _body_stream(request: HttpRequest) -> Any:
    """Where the body comes from: Django's stream, or the server's own for a chunked body without Content-Length.

    Django reads at most CONTENT_LENGTH bytes, so a chunked body (which has none) reads as empty. gunicorn de-chunks
    the body and marks its input as ending by itself (wsgi.input_terminated), so that input can be read to its end;
    the byte and gzip limits below apply to it exactly as to a body with a length.
    """
    if request.META.get("CONTENT_LENGTH") in (None, ""):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked or request.META.get("wsgi.input_terminated"):
            return request.META["wsgi.input"]
    return request  # HttpRequest.read() streams wsgi.input without Django's in-memory limit


def media_type(request: HttpRequest) -> str:
    """The Content-Type without parameters, lower-cased."""
    return request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
