"""Throttling of guessed credentials: passwords, API tokens and ingest tokens, per account and per client address.

django-axes keeps the failure counts in the shared cache (Redis in production), so every web process counts
together. Logins go through axes' authentication backend and signals; tokens are not Django logins, so the token
authenticators call `credential_refuse_if_locked` before checking a token and `credential_failed` when it is wrong.
A token's "account" is its public prefix (the part printed when it was created), its address the client's.
The lockout itself is audited once per lockout period by `console.receivers`.
"""

import time
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_cache_keys, get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header
from rest_framework.request import Request

# Shown on the login page and in API answers; the same words whichever of account or address is locked, so that a
# guesser learns nothing about which accounts exist.
LOCKED_MESSAGE = "Too many failed attempts. Try again later."


def client_ip(request: HttpRequest) -> str:
    """The client's address: the socket peer, or behind a TLS proxy the address that proxy appended last.

    Only the last X-Forwarded-For entry is the proxy's own statement; earlier ones are whatever the client sent.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR") or "unknown"


def lockout_seconds() -> int:
    cool_off = get_cool_off()
    return int(cool_off.total_seconds()) if cool_off else 3600


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """The login page again, answering 429 with Retry-After, so that the person sees why the right password fails."""
    response = render(request, "registration/login.html", {"locked_out": LOCKED_MESSAGE}, status=429)
    response["Retry-After"] = str(lockout_seconds())
    return response


class LockoutCacheHandler(AxesCacheHandler):
    """axes' cache handler, reading a request's failure counts (per account, per address) in one round trip instead
    of one per count: every ingest and API request asks before its credential is checked.

    A sender whose counts were all zero is not asked about again for a second in this process: a webhook source
    posting hundreds of single events a second paid a shared-cache round trip for each (a sixth of its CPU). Only a
    clean record is remembered, and any failure counted in this process forgets them all, so a guesser is counted
    and locked out exactly as before; a lockout caused through another process takes effect here within a second.
    """

    CLEAN_FOR_SECONDS = 1.0
    _REMEMBERED = 10_000  # keys are sender-chosen (address, token prefix): bound what is kept

    def __init__(self) -> None:
        super().__init__()
        self._clean_until: dict[tuple[str, ...], float] = {}

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        keys = tuple(get_client_cache_keys(request, credentials))
        now = time.monotonic()
        if self._clean_until.get(keys, 0.0) > now:
            return 0
        failures = max(self.cache.get_many(keys).values(), default=0)
        if failures == 0:
            self._remember_clean(keys, now)
            request.lockout_clean = True
        return failures

    def sender_known_clean(self, sender: tuple[str, ...]) -> bool:
        """Whether a token sender (its address as sent and the credential) was seen clean within the last second:
        its request then skips axes' preparation too (client address, user agent, cache keys: a twentieth of a
        single event's CPU), not only the shared-cache read."""
        return self._clean_until.get(sender, 0.0) > time.monotonic()

    def sender_remember_clean(self, sender: tuple[str, ...]) -> None:
        self._remember_clean(sender, time.monotonic())

    def _remember_clean(self, key: tuple[str, ...], now: float) -> None:
        if len(self._clean_until) >= self._REMEMBERED:
            self._clean_until.clear()
        self._clean_until[key] = now + self.CLEAN_FOR_SECONDS

    def user_login_failed(
        self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        self._clean_until.clear()
        super().user_login_failed(sender, credentials, request, **kwargs)


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, for HTTP logins only: a call without a request (the test client, a shell) is not throttled."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def _http_request(request: HttpRequest | Request) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


def credential_refuse_if_locked(request: HttpRequest | Request, *, credential: str) -> None:
    """Raise 429 (Retry-After: the lockout period) when this credential or this client address is locked out."""
    http_request = _http_request(request)
    handler = AxesProxyHandler.get_implementation()
    remembers = isinstance(handler, LockoutCacheHandler)
    # What decides the lockout keys as sent (the address is derived from these two): the same inputs, the same keys.
    sender = ("sender", http_request.META.get("REMOTE_ADDR", ""), http_request.META.get("HTTP_X_FORWARDED_FOR", ""))
    sender += (credential,)
    if remembers and handler.sender_known_clean(sender):
        return
    if not AxesProxyHandler.is_allowed(http_request, {"username": credential}):
        raise exceptions.Throttled(wait=lockout_seconds(), detail=LOCKED_MESSAGE)
    if remembers and getattr(http_request, "lockout_clean", False):
        handler.sender_remember_clean(sender)


def credential_failed(request: HttpRequest | Request, *, credential: str) -> None:
    """Count one wrong token against the credential and the client address (axes locks out at the limit)."""
    # Straight to axes rather than through Django's user_login_failed: a token is not a login, and a misconfigured
    # sender must not write one audit entry per request; the lockout it causes is audited.
    http_request = _http_request(request)
    AxesProxyHandler.user_login_failed(sender=__name__, credentials={"username": credential}, request=http_request)
    # This attempt still gets its truthful 401; axes' middleware would swap in the login page's lockout answer.
    http_request.axes_locked_out = False


class ApiTokenAuthentication(TokenAuthentication):
    """knox's `Authorization: Token <token>`, with wrong tokens throttled and non-ASCII tokens answered 401, not 500."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.authenticate_header(request).encode().lower() or len(header) != 2:
            return super().authenticate(request)  # not ours, or knox's own message for a malformed header
        token = header[1]
        # knox decodes the token as UTF-8 and fails with a 500 on other bytes; tokens are ASCII hex anyway.
        key = token[: CONSTANTS.TOKEN_KEY_LENGTH].decode("ascii", errors="replace")
        credential = f"api-token:{key}"
        http_request = _http_request(request)
        credential_refuse_if_locked(http_request, credential=credential)
        try:
            if not (token.isascii() and token.decode("ascii").isprintable()):
                raise exceptions.AuthenticationFailed("Invalid token.")
            return self.authenticate_credentials(token)
        except exceptions.AuthenticationFailed:
            credential_failed(http_request, credential=credential)
            raise


class ApiTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of knox tokens, for knox's class as subclassed here."""

    target_class = "console.lib.lockout.ApiTokenAuthentication"
