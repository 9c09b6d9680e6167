"""What Closeloop sends out (replays to a system's replay target, webhook notifications), as plain logic without the
ORM: sealed secrets, the request's signature, the replay's Idempotency-Key and business key, the retry schedule, and
the request itself with a masked view of it for dry runs.

Secrets are kept either sealed (Fernet, keyed from SECRET_KEY, so that a database dump alone does not carry them) or
as a reference `env:NAME` to an environment variable (for secrets that a vault or the orchestrator injects); neither
form is ever shown again after it is saved.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SEALED_PREFIX = "fernet:"
ENV_PREFIX = "env:"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MASK = "••••••••"

SIGNATURE_HEADER = "Closeloop-Signature"
# A receiver refuses a signature older than this, so that a captured request cannot be replayed later (Stripe's
# default tolerance).
SIGNATURE_TOLERANCE_SECONDS = 300

# Exponential backoff between attempts: 30 s, 1 min, 2 min, 4 min... never more than an hour apart.
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 3600
# Answers that say "not processed, try again later" (RFC 9110 408/503, RFC 6585 429, gateways 502/504, RFC 8470 425).
RETRY_STATUSES = frozenset({408, 425, 429, 502, 503, 504})


class SecretUnavailable(Exception):
    """A stored secret cannot be read: its environment variable is unset, or it was sealed under another key."""


# ---- Secrets --------------------------------------------------------------------------------------------------------


def _fernet_key(secret_key: str) -> bytes:
    # A key of its own for this purpose, so that the Fernet key is not SECRET_KEY's other uses (sessions, signing).
    digest = hashlib.sha256(b"closeloop.outbound-secrets\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet() -> MultiFernet:
    # SECRET_KEY_FALLBACKS (Django's rotation setting) still opens secrets sealed before a key rotation.
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def secret_seal(value: str) -> str:
    """What to store for a secret typed by a user: an `env:NAME` reference as it is, anything else sealed."""
    value = value.strip()
    if not value:
        return ""
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if not ENV_NAME.match(name):
            raise ValueError(f"{value!r} is not a valid environment variable reference (env:NAME)")
        return value
    return SEALED_PREFIX + _fernet().encrypt(value.encode()).decode()


def secret_open(stored: str) -> str:
    """The secret itself, at send time; SecretUnavailable says why it cannot be read."""
    if not stored:
        return ""
    if stored.startswith(ENV_PREFIX):
        name = stored[len(ENV_PREFIX) :]
        value = os.environ.get(name)
        if value is None:
            raise SecretUnavailable(f"environment variable {name} is not set")
        return value
    if stored.startswith(SEALED_PREFIX):
        try:
            return _fernet().decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnavailable("sealed under another SECRET_KEY; enter the secret again") from exc
    raise SecretUnavailable("stored in an unknown form; enter the secret again")


def secret_label(stored: str) -> str:
    """What pages, the API and the audit trail show of a secret: where it comes from, never its value."""
    if not stored:
        return ""
    if stored.startswith(ENV_PREFIX):
        return stored  # the variable's name is configuration, not the secret
    return "encrypted"


def secret_fingerprint(stored: str) -> str:
    """A keyed, short fingerprint of a secret for the audit trail: a rotation shows as a change, the value never.
    Keyed with the sealing key, so that a short secret cannot be guessed from its fingerprint."""
    if not stored or stored.startswith(ENV_PREFIX):
        return secret_label(stored)
    try:
        value = secret_open(stored)
    except SecretUnavailable:
        return "encrypted (unreadable)"
    mac = hmac.new(_fernet_key(settings.SECRET_KEY), value.encode(), hashlib.sha256).hexdigest()
    return f"encrypted ({mac[:8]})"


# ---- Signatures -----------------------------------------------------------------------------------------------------


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs its webhooks: the timestamp is signed
    with the body, so a receiver can refuse old requests."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def signature_verify(
    *, secret: str, header: str, body: bytes, now: float | None = None, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does (documented for integrators): recompute over the raw body, compare in constant time,
    refuse a timestamp outside the tolerance."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


# ---- Replays: idempotency and business keys -------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS): the same JSON value always gives the same bytes, whatever the key order or spacing."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        # JCS knows only IEEE 754 numbers; an integer past 2**53 (an ERP document number sent as a number) still
        # needs a stable form: sorted keys, no spaces, which is deterministic too.
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def replay_idempotency_key(*, occurrence_id: int, payload: Any) -> str:
    """The Idempotency-Key of a replay: the same occurrence sent with the same payload always has the same key (a
    target that honours it sends the same answer again instead of posting twice); a repaired payload is a new key."""
    digest = hashlib.sha256(f"closeloop.replay\x00{occurrence_id}\x00".encode() + canonical_json(payload))
    return digest.hexdigest()


_PATH_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def json_path_problem(path: str) -> str | None:
    """Why `path` is not a supported path (`$.business_keys.invoice`, `attributes.company_code`, `items[0].id`)."""
    text = path.strip()
    body = text[2:] if text.startswith("$.") else text
    if not body or "".join(m.group(0) for m in _PATH_STEP.finditer(body)) != body:
        return f"{path!r} is not a path such as $.business_keys.invoice"
    return None


def json_path_value(document: Any, path: str) -> Any:
    """The value at a simple JSON path (dotted names and [index]); None when a step is missing."""
    text = path.strip()
    body = text[2:] if text.startswith("$.") else text
    value = document
    for match in _PATH_STEP.finditer(body):
        name, index = match.group(1), match.group(2)
        if name is not None and isinstance(value, dict):
            value = value.get(name)
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
        if value is None:
            return None
    return value


@dataclass(frozen=True)
class BusinessKey:
    text: str  # shown to operators: "business_keys.invoice=INV-1, attributes.company_code=1010"
    digest: str  # looked up and constrained: one replay in flight per target and business object


def business_key(*, paths: list[str], payload: Any) -> BusinessKey | None:
    """The business object a payload submits, from the target's declared paths; None when none are declared or a
    value is missing (then nothing can be compared, and the replay goes by its occurrence alone)."""
    if not paths:
        return None
    values = [json_path_value(payload, path) for path in paths]
    if any(v is None or v == "" for v in values):
        return None
    # Values are compared as text with surrounding space removed: 1010 and "1010" name the same company code.
    normalised = [str(v).strip() if not isinstance(v, dict | list) else json.dumps(v, sort_keys=True) for v in values]
    text = ", ".join(f"{p.strip().removeprefix('$.')}={v}" for p, v in zip(paths, normalised, strict=True))
    digest = hashlib.sha256(canonical_json([[p.strip() for p in paths], normalised])).hexdigest()
    return BusinessKey(text=text[:300], digest=digest)


# ---- Retries --------------------------------------------------------------------------------------------------------


def retry_delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1-based): 30, 60, 120, 240... capped at an hour."""
    return min(RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), RETRY_CAP_SECONDS)


# ---- Requests -------------------------------------------------------------------------------------------------------


@dataclass
class OutboundRequest:
    """One HTTP request as it will be sent; `secret_headers` names the headers a dry run shows masked."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secret_headers: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def masked(self) -> dict[str, Any]:
        """The request for a dry run: method, URL, headers with every secret masked, and the body as text."""
        headers = {}
        for name, value in self.headers.items():
            if name in self.secret_headers:
                scheme, _, rest = value.partition(" ")
                # Keep a scheme word ("Bearer", "Basic") and the signature's timestamp: they are not secret.
                if name == SIGNATURE_HEADER:
                    value = value.split(",v1=")[0] + f",v1={MASK}"
                elif rest and scheme.isalpha() and len(scheme) <= 20:
                    value = f"{scheme} {MASK}"
                else:
                    value = MASK
            headers[name] = value
        return {
            "method": self.method,
            "url": self.url,
            "headers": headers,
            "body": self.body.decode(),
            "problems": list(self.problems),
        }


def json_body(document: Any) -> bytes:
    """The body sent: canonical JSON, so that the bytes do not depend on how the database stored the document
    (jsonb reorders keys), and a dry run shows exactly the bytes a send will carry."""
    return canonical_json(document)


def request_build(
    *,
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    auth_secret: str = "",
    signing_secret: str = "",
    timestamp: int | None = None,
) -> OutboundRequest:
    """The request with its credential and signature, read from the stored (sealed or env:) secrets; a secret that
    cannot be read is a problem on the request (a dry run shows it, a send fails on it)."""
    request = OutboundRequest(
        method=method,
        url=url,
        headers={"Content-Type": "application/json", "User-Agent": "Closeloop/1", **headers},
        body=body,
    )
    for stored, name in ((auth_secret, "Authorization"), (signing_secret, SIGNATURE_HEADER)):
        if not stored:
            continue
        try:
            value = secret_open(stored)
        except SecretUnavailable as exc:
            request.problems.append(f"{'credential' if name == 'Authorization' else 'signing secret'}: {exc}")
            continue
        request.headers[name] = (
            value if name == "Authorization" else signature_header(secret=value, body=body, timestamp=timestamp)
        )
        request.secret_headers.add(name)
    return request
