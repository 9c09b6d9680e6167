"""Ingest authentication: `Authorization: Bearer <token>` of an ingest source."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from console.lib.cache import window_count, window_remaining
from console.lib.lockout import credential_failed, credential_refuse_if_locked
from transactions.models import IngestSource
from transactions.services import ingest_source_authenticate

# As many characters as IngestToken.prefix keeps: the part of a token that may be shown and logged.
TOKEN_PUBLIC_CHARS = 12


class IngestPrincipal:
    """The authenticated sender: an ingest source, not a person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, source: IngestSource) -> None:
        self.source = source

    def __str__(self) -> str:
        return f"source:{self.source.name}"


class IngestTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[IngestPrincipal, IngestSource] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        # The token's public prefix stands for the account in lockout counting; the address counts too.
        credential = "ingest-token:" + header[1][:TOKEN_PUBLIC_CHARS].decode("ascii", errors="replace")
        credential_refuse_if_locked(request, credential=credential)
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            credential_failed(request, credential=credential)
            raise exceptions.AuthenticationFailed("token is not ASCII") from exc
        source = ingest_source_authenticate(raw_token=raw) if raw.isprintable() else None
        if source is None:
            credential_failed(request, credential=credential)
            raise exceptions.AuthenticationFailed("invalid or revoked ingest token")
        return IngestPrincipal(source), source

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="closeloop-ingest"'


class IsIngestSource(permissions.BasePermission):
    message = "an ingest token is required: Authorization: Bearer <token>"

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, IngestPrincipal)


# How often a web process adds its ingest hits to the shared count: a webhook source posting hundreds of single
# events a second paid a shared-cache round trip for each; the limit may now be overrun by this much traffic.
THROTTLE_SYNC_SECONDS = 0.25


class IngestSourceThrottle(throttling.SimpleRateThrottle):
    """Requests per ingest source (not per client address: one gateway may front many systems), counted in fixed
    windows in the shared cache, synchronised every THROTTLE_SYNC_SECONDS. DRF's own throttle reads and writes back
    the list of every request's time in the window (1,200 floats at the default rate) and loses counts between
    processes."""

    scope = "ingest"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        return window_count(key, self.duration, sync_seconds=THROTTLE_SYNC_SECONDS) <= self.num_requests

    def wait(self) -> float:
        return window_remaining(self.duration)

    def get_rate(self) -> str:
        return settings.INGEST_THROTTLE_RATE

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.user, IngestPrincipal):
            return f"throttle_ingest_{request.user.source.pk}"
        return None


class IngestTokenScheme(OpenApiAuthenticationExtension):
    target_class = "transactions.api.auth.IngestTokenAuthentication"
    name = "ingestToken"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "Ingest source token (create_ingest_token)."}
