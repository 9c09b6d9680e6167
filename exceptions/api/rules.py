"""The rules API: classification and routing rules (list, read, create, change, delete, preview), for managers.

The API binds the console's own forms to the body (console.lib.api.form_cleaned) and calls the same audited services
and preview selectors as the pages in views/manage.py, so both refuse the same input and write the same audit entries.
Categories and queues are named by slug, as in the cases API. A PATCH lays the body over the rule's current values.
Rules carry no version: a change applies to the rule as it is when the write takes its row lock.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, form_cleaned, request_body
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from exceptions import selectors, services
from exceptions.forms import ClassificationRuleForm, RoutingRuleForm
from exceptions.models import Category, ClassificationRule, Queue, RoutingRule
from exceptions.selectors import NEW_RULE_ID, ROUTING_PREVIEW_SAMPLE


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error(f"the caller lacks {EDIT_RULES}")}
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such rule")}
WRITE_ERRORS = {**DETAIL_ERRORS, 400: _error("invalid input: `detail` names every problem, `errors` lists them")}
# What a new rule is when the body leaves it out (the model's defaults; an unchecked box on the page is "off").
NEW_RULE_DEFAULTS = {"position": 100, "is_active": True}


class RulePagination(CursorPagination):
    """Evaluation order: the first active rule that matches wins."""

    ordering = ("position", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


# ---- Shapes ---------------------------------------------------------------------------------------------------------


class ClassificationRuleSerializer(serializers.ModelSerializer):
    """A classification rule; every condition set must hold (globs, a|b alternatives; the message is a regex)."""

    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    attributes = serializers.DictField(
        child=serializers.CharField(), required=False, help_text='attribute name -> glob, e.g. {"http.route": "/o*"}'
    )

    class Meta:
        model = ClassificationRule
        fields = [
            "id",
            "position",
            "name",
            "category",
            "system",
            "kind",
            "error_code",
            "error_type",
            "message_pattern",
            "http_status",
            "attributes",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class RoutingRuleSerializer(serializers.ModelSerializer):
    """A routing rule: the first active one matching a new case puts it in its queue."""

    queue = serializers.SlugRelatedField(slug_field="slug", queryset=Queue.objects.all())
    categories = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="category slugs; empty: any category"
    )

    class Meta:
        model = RoutingRule
        fields = [
            "id",
            "position",
            "name",
            "queue",
            "categories",
            "system",
            "kind",
            "entity",
            "min_amount",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ClassificationPreviewRowSerializer(serializers.Serializer):
    occurred_at = serializers.DateTimeField()
    system = serializers.CharField()
    kind = serializers.CharField()
    error_code = serializers.CharField()
    message = serializers.CharField()
    current = serializers.CharField(help_text="the category today")
    new = serializers.CharField(help_text="the category with the rule as sent")


class ClassificationPreviewSerializer(serializers.Serializer):
    """What the rule as sent would classify among the last days' occurrences, the rules before it still winning."""

    days = serializers.IntegerField()
    scanned = serializers.IntegerField()
    capped = serializers.BooleanField(help_text="more occurrences than the preview scans")
    matches = serializers.IntegerField()
    changes_category = serializers.IntegerField()
    left_to_others = serializers.IntegerField(
        help_text="occurrences this saved rule classifies today that it would leave to other rules"
    )
    unclassified = serializers.IntegerField()
    unclassified_matches = serializers.IntegerField()
    others_change = serializers.IntegerField()
    rows = ClassificationPreviewRowSerializer(many=True)


class CaseMoveSerializer(serializers.Serializer):
    case_id = serializers.IntegerField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    from_queue = serializers.CharField()
    to_queue = serializers.CharField()
    rule_name = serializers.CharField()


class RoutingPreviewSerializer(serializers.Serializer):
    """The open cases that would change queue with the rule as sent (nothing is saved)."""

    count = serializers.IntegerField()
    moves = CaseMoveSerializer(many=True, help_text=f"the first {ROUTING_PREVIEW_SAMPLE}")


# ---- Forms bound to the API body ------------------------------------------------------------------------------------


class ClassificationRuleApiForm(ClassificationRuleForm):
    """The page's form, naming the category by slug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].to_field_name = "slug"


class RoutingRuleApiForm(RoutingRuleForm):
    """The page's form, naming the queue by slug."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["queue"].to_field_name = "slug"


# ---- Views ----------------------------------------------------------------------------------------------------------


class _RuleViewSet(viewsets.ModelViewSet):
    """List, read, create (POST), change (PATCH: the body over the current values), delete, and preview."""

    pagination_class = RulePagination
    permission_classes = [HasCapability]
    required_capability = EDIT_RULES
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    form_class: type[ClassificationRuleForm] | type[RoutingRuleForm]

    def snapshot(self, rule: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _form(self, request: Request, rule: Any | None) -> Any:
        defaults = self.snapshot(rule) if rule is not None else NEW_RULE_DEFAULTS
        form = self.form_class(request_body(request, defaults=defaults), instance=rule)
        form_cleaned(form)
        return form

    def _answer(self, rule: Any, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=rule.pk)).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = self._form(request, None)
        rule = self.create_rule(actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(rule, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        form = self._form(request, rule)
        saved = self.update_rule(rule=rule, actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(saved)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.delete_rule(rule=self.get_object(), actor=actor_for(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

    def create_rule(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def update_rule(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def delete_rule(self, **kwargs: Any) -> None:
        raise NotImplementedError


_RULE_DOCS = {
    "list": {"summary": "List {noun}s", "description": "In evaluation order (position, then id)."},
    "retrieve": {"summary": "One {noun}"},
    "create": {"summary": "Create a {noun}", "description": "Audited. Missing position: 100; missing is_active: on."},
    "partial_update": {"summary": "Change a {noun}", "description": "Audited; the fields sent replace the current."},
    "destroy": {"summary": "Delete a {noun}", "description": "Audited."},
}


def _rule_schema(noun: str, serializer: type[serializers.Serializer]) -> Any:
    answers = {
        "list": {200: serializer(many=True), 400: _error("an unknown query parameter"), **READ_ERRORS},
        "retrieve": {200: serializer, **DETAIL_ERRORS},
        "create": {201: serializer, **WRITE_ERRORS},
        "partial_update": {200: serializer, **WRITE_ERRORS},
        "destroy": {204: None, **DETAIL_ERRORS},
    }
    return extend_schema_view(
        **{
            name: extend_schema(
                summary=docs["summary"].format(noun=noun),
                description=docs.get("description", ""),
                responses=answers[name],
            )
            for name, docs in _RULE_DOCS.items()
        }
    )


@_rule_schema("classification rule", ClassificationRuleSerializer)
class ClassificationRuleViewSet(_RuleViewSet):
    """Classification rules: which category a failure falls in."""

    serializer_class = ClassificationRuleSerializer
    form_class = ClassificationRuleApiForm

    def get_queryset(self) -> QuerySet[ClassificationRule]:
        return ClassificationRule.objects.select_related("category").order_by("position", "id")

    def snapshot(self, rule: ClassificationRule) -> dict[str, Any]:
        return services.classification_rule_snapshot(rule)

    def create_rule(self, **kwargs: Any) -> ClassificationRule:
        return services.classification_rule_create(**kwargs)

    def update_rule(self, **kwargs: Any) -> ClassificationRule:
        return services.classification_rule_update(**kwargs)

    def delete_rule(self, **kwargs: Any) -> None:
        services.classification_rule_delete(**kwargs)

    def _preview(self, request: Request, rule: ClassificationRule | None) -> Response:
        form = self._form(request, rule)
        preview = selectors.classification_rule_preview(
            spec=form.spec(rule.pk if rule else NEW_RULE_ID), position=form.cleaned_data["position"], now=timezone.now()
        )
        return Response(ClassificationPreviewSerializer(preview).data)

    @extend_schema(
        operation_id="classification_rules_preview_new",
        summary="Preview a new classification rule",
        description="What the rule sent would classify among the last 7 days' occurrences, as the rule form's "
        "Preview shows it; nothing is saved.",
        request=ClassificationRuleSerializer,
        responses={200: ClassificationPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="preview", filter_backends=[], pagination_class=None)
    def preview_new(self, request: Request) -> Response:
        return self._preview(request, None)

    @extend_schema(
        summary="Preview a change to a classification rule",
        description="What the rule would classify with the fields sent laid over it; nothing is saved.",
        request=ClassificationRuleSerializer,
        responses={200: ClassificationPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request: Request, pk: str | None = None) -> Response:
        return self._preview(request, self.get_object())


@_rule_schema("routing rule", RoutingRuleSerializer)
class RoutingRuleViewSet(_RuleViewSet):
    """Routing rules: which queue a new case goes to. Open cases stay put until re-routed."""

    serializer_class = RoutingRuleSerializer
    form_class = RoutingRuleApiForm

    def get_queryset(self) -> QuerySet[RoutingRule]:
        return selectors.routing_rule_list()

    def snapshot(self, rule: RoutingRule) -> dict[str, Any]:
        return services.routing_rule_snapshot(rule)

    def create_rule(self, **kwargs: Any) -> RoutingRule:
        return services.routing_rule_create(**kwargs)

    def update_rule(self, **kwargs: Any) -> RoutingRule:
        return services.routing_rule_update(**kwargs)

    def delete_rule(self, **kwargs: Any) -> None:
        services.routing_rule_delete(**kwargs)

    def _preview(self, request: Request, rule: RoutingRule | None) -> Response:
        form = self._form(request, rule)
        rules = selectors.routing_specs_as_typed(
            spec=form.spec(rule.pk if rule else NEW_RULE_ID),
            position=form.cleaned_data["position"],
            is_active=form.cleaned_data["is_active"],
        )
        moves = selectors.routing_moves(rules=rules)
        return Response(RoutingPreviewSerializer({"count": len(moves), "moves": moves[:ROUTING_PREVIEW_SAMPLE]}).data)

    @extend_schema(
        operation_id="routing_rules_preview_new",
        summary="Preview a new routing rule",
        description="The open cases that would change queue with the rule sent; nothing is saved.",
        request=RoutingRuleSerializer,
        responses={200: RoutingPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="preview", filter_backends=[], pagination_class=None)
    def preview_new(self, request: Request) -> Response:
        return self._preview(request, None)

    @extend_schema(
        summary="Preview a change to a routing rule",
        description="The open cases that would change queue with the fields sent laid over the rule; nothing saved.",
        request=RoutingRuleSerializer,
        responses={200: RoutingPreviewSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request: Request, pk: str | None = None) -> Response:
        return self._preview(request, self.get_object())

    @extend_schema(
        summary="Re-route open cases",
        description="Moves every open case to the queue the routing rules give it now (audited, one entry per case "
        "moved); answers the moves.",
        request=None,
        responses={200: RoutingPreviewSerializer, **READ_ERRORS},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def reroute(self, request: Request) -> Response:
        moves = services.cases_reroute(actor=actor_for(request.user))
        return Response(RoutingPreviewSerializer({"count": len(moves), "moves": moves[:ROUTING_PREVIEW_SAMPLE]}).data)
