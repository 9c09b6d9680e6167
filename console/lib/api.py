"""API plumbing shared by every app: pagination, the error translation, role permissions."""

import logging
from typing import Any

import psycopg
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from rest_framework import permissions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from console.lib.errors import DomainError

logger = logging.getLogger(__name__)

# Faults of the storage that a later retry can cure: connection lost (also mid-COPY, where psycopg raises its own
# errors outside Django's wrapper), server shutting down, pool or lock wait timed out. They answer 503 with
# Retry-After so that a sender keeps its data and comes back; a 500 would tell an OTLP exporter to drop it.
STORAGE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_AFTER_SECONDS = 5


class CreatedCursorPagination(CursorPagination):
    """Stable cursor pagination, newest first; large tables never pay for OFFSET or COUNT."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    if isinstance(exc, PermissionDenied):
        return Response({"detail": str(exc) or "You do not have permission to perform this action."}, status=403)
    if isinstance(exc, STORAGE_UNAVAILABLE):
        logger.warning("api.storage_unavailable", extra={"error": type(exc).__name__})
        return Response(
            {"detail": "storage temporarily unavailable; retry later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return drf_exception_handler(exc, context)


class HasCapability(permissions.BasePermission):
    """Allows the request when the user holds the view's `required_capability` (e.g. VIEW_AUDIT)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        capability = getattr(view, "required_capability", None)
        return bool(
            request.user and request.user.is_authenticated and (capability is None or request.user.has_perm(capability))
        )


# Answers every API operation can give besides its own, which views do not declare one by one: without them the
# schema says less than the API does (schemathesis, tests/test_api_schema.py, holds the API to the schema).
_COMMON_ANSWERS = {
    "400": "invalid query parameters or body; the problems per field",
    "401": "no, expired or revoked token",
    "403": "the token's user lacks the role",
    "404": "no such object, or a stale pagination cursor",
    "429": "rate limit, or too many failed logins or tokens from this client (see Retry-After)",
}
_ANSWER_SCHEMA = {
    "type": "object",
    "description": "A 4xx answer: `detail` says why; invalid input lists its problems per field instead or as well.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


def schema_common_answers(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: document the answers of _COMMON_ANSWERS where an operation can give them."""
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorAnswer"] = _ANSWER_SCHEMA
    for operation in (op for ops in result.get("paths", {}).values() for op in ops.values() if isinstance(op, dict)):
        responses = operation.setdefault("responses", {})
        has_input = bool(operation.get("parameters") or operation.get("requestBody"))
        for status, description in _COMMON_ANSWERS.items():
            if status in responses or (status == "400" and not has_input):
                continue
            if status in {"401", "403"} and operation.get("security") == [{}]:
                continue  # an operation open to everyone
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}},
            }
    return result


__all__ = [
    "RETRY_AFTER_SECONDS",
    "STORAGE_UNAVAILABLE",
    "CreatedCursorPagination",
    "HasCapability",
    "exception_handler",
    "schema_common_answers",
]
