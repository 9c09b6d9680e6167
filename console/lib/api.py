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


__all__ = [
    "RETRY_AFTER_SECONDS",
    "STORAGE_UNAVAILABLE",
    "CreatedCursorPagination",
    "HasCapability",
    "exception_handler",
]
