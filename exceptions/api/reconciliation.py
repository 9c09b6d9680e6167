"""The reconciliation API: rules (everyone who reads cases reads them; managers create, change, delete and preview
them, audited) and results (read-only, filtered like the reconciliation page, cursor-paginated).

Rule bodies are validated by the rule page's own form (console.lib.api.form_cleaned), so the page and the API refuse
the same input with the same words: a path that does not parse or a negative tolerance is a 400 naming the field,
and nothing is saved. Processes and mappings are named by slug. A PATCH lays the body over the rule's current values.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, form_cleaned, request_body
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_CASES
from exceptions import selectors, services
from exceptions.filters import ReconciliationResultFilterSet
from exceptions.forms.reconciliation import ReconciliationRuleForm
from exceptions.models import ReconciliationResult, ReconciliationRule, ValueMapping
from transactions.models import ProcessDefinition


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error(f"the caller lacks {VIEW_CASES}")}
# A filter django-filter refuses answers its problems per filter, without `detail` (as the cases list does).
FILTER_ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="an invalid or unknown filter: the problems per filter")
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such rule")}
WRITE_ERRORS = {
    401: _error("not authenticated"),
    403: _error(f"the caller lacks {EDIT_RULES}"),
    404: _error("no such rule"),
    400: _error("invalid input: `detail` names every problem, `errors` lists them per field; nothing is saved"),
}
# What a new rule is when the body leaves it out (the model's defaults).
NEW_RULE_DEFAULTS = {
    "position": 100,
    "is_active": True,
    "kind": "compare",
    "comparison": "equal",
    "severity": "medium",
    "tolerance": "0",
    "left_currency_path": "currency",
    "right_currency_path": "currency",
}
WRITE_ACTIONS = {"create", "partial_update", "destroy", "preview", "preview_new"}


# ---- Shapes ---------------------------------------------------------------------------------------------------------


class ReconciliationRuleSerializer(serializers.ModelSerializer):
    """A reconciliation rule: compare a fact between two steps' events, or allow one event per value."""

    process = serializers.SlugRelatedField(
        slug_field="slug", queryset=ProcessDefinition.objects.all(), allow_null=True, required=False
    )
    mapping = serializers.SlugRelatedField(
        slug_field="slug", queryset=ValueMapping.objects.all(), allow_null=True, required=False
    )
    tolerance = serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0, required=False)

    class Meta:
        model = ReconciliationRule
        fields = [
            "id",
            "position",
            "name",
            "description",
            "process",
            "kind",
            "left_system",
            "left_kind",
            "left_path",
            "left_currency_path",
            "right_system",
            "right_kind",
            "right_path",
            "right_currency_path",
            "scope_path",
            "comparison",
            "tolerance",
            "mapping",
            "severity",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ReconciliationResultSerializer(serializers.ModelSerializer):
    """One rule's verdict on one transaction (and subject, for unique rules)."""

    rule_name = serializers.CharField(source="rule.name", read_only=True)
    transaction = serializers.IntegerField(source="txn_id", read_only=True)
    case = serializers.IntegerField(source="case_id", read_only=True, allow_null=True)

    class Meta:
        model = ReconciliationResult
        fields = [
            "id",
            "rule",
            "rule_name",
            "transaction",
            "subject",
            "status",
            "reason",
            "left_value",
            "right_value",
            "left_event_id",
            "right_event_id",
            "left_system",
            "right_system",
            "entity",
            "amount_at_stake",
            "currency",
            "occurred_at",
            "evaluated_at",
            "case",
        ]
        read_only_fields = fields


class PreviewRowSerializer(serializers.Serializer):
    txn_id = serializers.IntegerField()
    status = serializers.CharField()
    left_value = serializers.CharField()
    right_value = serializers.CharField()
    reason = serializers.CharField()
    current = serializers.CharField(help_text="the saved rule's stored verdict; empty when none")


class ReconciliationPreviewSerializer(serializers.Serializer):
    """What the rule as sent would find among the transactions active in the last days; nothing is saved."""

    days = serializers.IntegerField()
    scanned = serializers.IntegerField()
    capped = serializers.BooleanField(help_text="more transactions than the preview evaluates")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="results by status")
    changes = serializers.IntegerField(help_text="verdicts that differ from the saved rule's stored ones")
    rows = PreviewRowSerializer(many=True, help_text="mismatches and errors first")


class ReconciliationRuleApiForm(ReconciliationRuleForm):
    """The page's form, naming the process and the mapping by slug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["process"].to_field_name = "slug"
        self.fields["mapping"].to_field_name = "slug"


# ---- Views ----------------------------------------------------------------------------------------------------------


class RulePagination(CursorPagination):
    ordering = ("position", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ResultPagination(CursorPagination):
    """Newest first (recon_result_recent_idx), stable under inserts."""

    ordering = ("-occurred_at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema_view(
    list=extend_schema(
        summary="List reconciliation rules",
        description="In evaluation order.",
        responses={
            200: ReconciliationRuleSerializer(many=True),
            400: _error("an unknown query parameter"),
            **READ_ERRORS,
        },
    ),
    retrieve=extend_schema(
        summary="One reconciliation rule", responses={200: ReconciliationRuleSerializer, **DETAIL_ERRORS}
    ),
    create=extend_schema(
        summary="Create a reconciliation rule",
        description="Audited (reconciliation_rule.created). Missing fields take the defaults: position 100, active, "
        "compare, equal, medium, tolerance 0, currency paths `currency`.",
        responses={201: ReconciliationRuleSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a reconciliation rule",
        description="Audited; the fields sent replace the current ones.",
        responses={200: ReconciliationRuleSerializer, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a reconciliation rule",
        description="Audited; its results go with it, the cases it opened stay.",
        responses={204: None, **WRITE_ERRORS},
    ),
)
class ReconciliationRuleViewSet(viewsets.ModelViewSet):
    """Reconciliation rules: read by whoever reads cases, written by managers."""

    serializer_class = ReconciliationRuleSerializer
    pagination_class = RulePagination
    permission_classes = [HasCapability]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def required_capability(self) -> str:
        return EDIT_RULES if self.action in WRITE_ACTIONS else VIEW_CASES

    def get_queryset(self) -> QuerySet[ReconciliationRule]:
        return selectors.reconciliation_rule_list()

    def _form(self, request: Request, rule: ReconciliationRule | None) -> ReconciliationRuleApiForm:
        defaults = services.reconciliation_rule_snapshot(rule) if rule is not None else NEW_RULE_DEFAULTS
        form = ReconciliationRuleApiForm(request_body(request, defaults=defaults), instance=rule)
        form_cleaned(form)
        return form

    def _answer(self, rule: ReconciliationRule, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = self._form(request, None)
        rule = services.reconciliation_rule_create(actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(rule, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        form = self._form(request, rule)
        saved = services.reconciliation_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(saved)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.reconciliation_rule_delete(rule=self.get_object(), actor=actor_for(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _preview(self, request: Request, rule: ReconciliationRule | None) -> Response:
        form = self._form(request, rule)
        preview = selectors.reconciliation_rule_preview(rule=form.preview_rule(rule), now=timezone.now())
        return Response(ReconciliationPreviewSerializer(preview).data)

    @extend_schema(
        operation_id="reconciliation_rules_preview_new",
        summary="Preview a new reconciliation rule",
        description="What the rule sent would find among the transactions active in the last 7 days, as the rule "
        "page's Preview shows it; nothing is saved.",
        request=ReconciliationRuleSerializer,
        responses={200: ReconciliationPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="preview", filter_backends=[], pagination_class=None)
    def preview_new(self, request: Request) -> Response:
        return self._preview(request, None)

    @extend_schema(
        summary="Preview a change to a reconciliation rule",
        description="What the rule would find with the fields sent laid over it; nothing is saved.",
        request=ReconciliationRuleSerializer,
        responses={200: ReconciliationPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request: Request, pk: str | None = None) -> Response:
        return self._preview(request, self.get_object())


@extend_schema_view(
    list=extend_schema(
        summary="List reconciliation results",
        description="Newest first, cursor-paginated; e.g. ?status=mismatched&rule=3&system=sap-s4&entity=DE01"
        "&occurred_since=2026-05-01T00:00:00Z.",
        responses={200: ReconciliationResultSerializer(many=True), 400: FILTER_ERROR, **READ_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One reconciliation result",
        responses={200: ReconciliationResultSerializer, **READ_ERRORS, 404: _error("no such result")},
    ),
)
class ReconciliationResultViewSet(viewsets.ReadOnlyModelViewSet):
    """What the rules found: one verdict per rule, transaction and subject."""

    serializer_class = ReconciliationResultSerializer
    filterset_class = ReconciliationResultFilterSet
    pagination_class = ResultPagination
    permission_classes = [HasCapability]
    required_capability = VIEW_CASES

    def get_queryset(self) -> QuerySet[ReconciliationResult]:
        return selectors.reconciliation_result_list()
