"""API plumbing shared by every app: pagination, the error translation, role permissions."""

import logging
from typing import Any, TypeVar

import orjson
import psycopg
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import InterfaceError, OperationalError
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
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


class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer: a reason to show; invalid input also lists its problems per field."""

    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="invalid input only: the problems per field")


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON, written by orjson: for answers of thousands of plain rows (a year of the interfaces API is 2 MB;
    json.dumps spent ~60 ms of it, orjson ~5). Values orjson does not know (dates, decimals, lazy text) go through
    DRF's encoder as they would have; an indented answer, or anything orjson refuses, is left to DRF itself."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=self.encoder_class().default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except (TypeError, orjson.JSONEncodeError):
            return super().render(data, accepted_media_type, renderer_context)


FAST_RENDERERS = [FastJSONRenderer, BrowsableAPIRenderer]


class CreatedCursorPagination(CursorPagination):
    """Stable cursor pagination, newest first; large tables never pay for OFFSET or COUNT."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500


# Query parameters every list understands besides its filters: DRF's format override and what a paginator or an
# ordering backend reads (found on the view, so that a list with its own paginator is covered too).
ALWAYS_ALLOWED_PARAMETERS = frozenset({"format"})
_PAGINATOR_PARAMETERS = (
    "cursor_query_param",
    "page_query_param",
    "page_size_query_param",
    "limit_query_param",
    "offset_query_param",
)


def list_parameters(view: Any, request: Request) -> set[str]:
    """The query parameters a list view reads: its FilterSet's filters, its paginator's and ordering's parameters."""
    allowed = set(ALWAYS_ALLOWED_PARAMETERS)
    paginator = getattr(view, "paginator", None)
    allowed.update(filter(None, (getattr(paginator, name, None) for name in _PAGINATOR_PARAMETERS)))
    for backend_class in getattr(view, "filter_backends", None) or ():
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset_class = backend.get_filterset_class(view, view.get_queryset())
            if filterset_class is not None:
                allowed.update(filterset_class.base_filters)
        elif getattr(backend, "ordering_param", None):
            allowed.add(backend.ordering_param)
        elif getattr(backend, "search_param", None):
            allowed.add(backend.search_param)
    return allowed


def refuse_unknown_parameters(request: Request, allowed: set[str]) -> None:
    """A 400 naming every query parameter outside `allowed` (and `format`): a misspelt or unsupported filter (`?q=`
    where there is no search) would otherwise answer the whole unfiltered list as if it were the answer."""
    allowed = allowed | ALWAYS_ALLOWED_PARAMETERS
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ValidationError(
            {
                "detail": f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                f"this list reads: {', '.join(sorted(allowed))}",
                **{name: ["unknown query parameter"] for name in unknown},
            }
        )


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, refusing a query parameter that the list does not read (see refuse_unknown_parameters). The
    default filter backend, so that every list viewset refuses them; list views of their own call the function."""

    def filter_queryset(self, request: Request, queryset: Any, view: Any) -> Any:
        if request.method in {"GET", "HEAD"} and not getattr(view, "detail", False):
            refuse_unknown_parameters(request, list_parameters(view, request))
        return super().filter_queryset(request, queryset, view)


def request_body(request: Request, *, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body as a plain dict over `defaults` (a PATCH lays the body over the object's current values); a form
    body's repeated names become lists, as a JSON body would send them."""
    data = request.data
    if hasattr(data, "lists"):
        body = {name: values if len(values) > 1 else values[0] for name, values in data.lists()}
    elif isinstance(data, dict):
        body = dict(data)
    else:
        raise ValidationError({"detail": "the body must be a JSON object"})
    return {**(defaults or {}), **body}


S = TypeVar("S", bound=serializers.Serializer)


def serializer_validated(serializer_class: type[S], request: Request) -> S:
    """The serializer with valid input, or a 400 whose `detail` says what is wrong (and `errors` lists it per field)."""
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        reasons = "; ".join(f"{name}: {_problem_text(problem)}" for name, problem in serializer.errors.items())
        raise ValidationError({"detail": reasons, "errors": serializer.errors})
    return serializer


def _problem_text(problem: Any) -> str:
    if isinstance(problem, dict):
        return ", ".join(f"{key} {_problem_text(value)}" for key, value in problem.items())
    if isinstance(problem, list):
        return " ".join(_problem_text(item) for item in problem if item)
    return str(problem)


def form_cleaned(form: forms.BaseForm) -> dict[str, Any]:
    """The cleaned data of a console form bound to an API body: the API validates with the pages' own forms, so both
    refuse the same input for the same reason. Invalid input is a 400 whose `detail` names every problem."""
    if form.is_valid():
        return form.cleaned_data
    errors = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
    reasons = "; ".join(
        f"{'' if name == NON_FIELD_ERRORS else name + ': '}{' '.join(messages)}" for name, messages in errors.items()
    )
    raise ValidationError({"detail": reasons, "errors": errors})


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
    "ErrorSerializer",
    "HasCapability",
    "StrictFilterBackend",
    "exception_handler",
    "form_cleaned",
    "list_parameters",
    "refuse_unknown_parameters",
    "request_body",
    "schema_common_answers",
    "serializer_validated",
]
