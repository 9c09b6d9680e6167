"""The process definitions API for managers: list, read, create and change processes and their expected steps.

The body is bound to the console's ProcessForm and step formset (views/processes.py) and saved by the same audited
services, so both refuse the same input. Changes apply to events correlated from then on. Processes carry no version: a
change applies to the process as it is when the write takes its row lock.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, form_cleaned, request_body
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from transactions import selectors, services
from transactions.forms import BaseProcessStepFormSet, ProcessForm, process_step_formset
from transactions.models import ProcessDefinition

PREFIX = "steps"
# What a step is when the body leaves it out (an unchecked box on the page is "off"; a step is required by default).
STEP_DEFAULTS = {"required": True}


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error(f"the caller lacks {EDIT_RULES}")}
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such process")}
WRITE_ERRORS = {**DETAIL_ERRORS, 400: _error("invalid input: `detail` names every problem, `errors` lists them")}


class ProcessStepSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=1, max_value=32767)
    name = serializers.CharField(max_length=120)
    system = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text="empty: any system")
    kind_pattern = serializers.CharField(max_length=200, help_text="glob on the event kind, a|b for alternatives")
    allowance = serializers.CharField(max_length=30, help_text="after the previous step, e.g. 4h or 2d")
    required = serializers.BooleanField(required=False, default=True)
    requires_approval = serializers.BooleanField(required=False, default=False)
    approval_step = serializers.CharField(max_length=120, required=False, allow_blank=True)
    allowed_approvers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="roles or user names"
    )
    approval_opens_case = serializers.BooleanField(required=False, default=False)


class ProcessSerializer(serializers.ModelSerializer):
    """A process definition: the key types linking its events and the steps it expects, in order."""

    correlation_keys = serializers.ListField(child=serializers.CharField(), help_text="e.g. order, invoice, payment")
    steps = ProcessStepSerializer(many=True, help_text="at least one; positions unique")

    class Meta:
        model = ProcessDefinition
        fields = ["id", "slug", "name", "description", "correlation_keys", "is_active", "steps", "created_at"]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, process: ProcessDefinition) -> dict[str, Any]:
        state = services.process_snapshot(process)
        for step in state["steps"]:
            step["allowed_approvers"] = [a.strip() for a in step["allowed_approvers"].split(",") if a.strip()]
        return {
            "id": process.pk,
            **state,
            "created_at": serializers.DateTimeField().to_representation(process.created_at),
        }


def _text_list(value: Any) -> Any:
    # The page's fields take comma-separated text; the API takes lists.
    return ", ".join(str(v) for v in value) if isinstance(value, list) else value


def _steps_formset(steps: Any) -> BaseProcessStepFormSet:
    """The page's step formset bound to the steps sent: every step is a filled-in row (none is skipped as blank)."""
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise ValidationError({"detail": "steps: a list of step objects", "errors": {"steps": ["a list of objects"]}})
    data = {f"{PREFIX}-TOTAL_FORMS": len(steps), f"{PREFIX}-INITIAL_FORMS": len(steps)}
    for index, step in enumerate(steps):
        for name, value in {**STEP_DEFAULTS, **step}.items():
            data[f"{PREFIX}-{index}-{name}"] = _text_list(value)
    return process_step_formset(data, None)


def _steps_cleaned(formset: BaseProcessStepFormSet) -> None:
    if formset.is_valid():
        return
    errors: dict[str, list[str]] = {}
    for index, form_errors in enumerate(formset.errors):
        for name, messages in form_errors.items():
            errors[f"steps[{index}].{name}"] = [str(m) for m in messages]
    if formset.non_form_errors():
        errors["steps"] = [str(m) for m in formset.non_form_errors()]
    reasons = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
    raise ValidationError({"detail": reasons, "errors": errors})


class ProcessPagination(CursorPagination):
    ordering = ("name", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List process definitions",
        responses={200: ProcessSerializer(many=True), 400: _error("an unknown query parameter"), **READ_ERRORS},
    ),
    retrieve=extend_schema(summary="One process definition", responses={200: ProcessSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        summary="Create a process definition",
        description="Audited; recognised from the next correlated batch on. Missing is_active: on.",
        responses={201: ProcessSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a process definition",
        description="Audited; the fields sent replace the current ones (`steps`, when sent, replaces every step). "
        "The slug never changes; existing transactions are not re-evaluated.",
        responses={200: ProcessSerializer, **WRITE_ERRORS},
    ),
)
class ProcessDefinitionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """The processes Closeloop recognises and the steps each expects."""

    serializer_class = ProcessSerializer
    pagination_class = ProcessPagination
    permission_classes = [HasCapability]
    required_capability = EDIT_RULES
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.process_definition_list()

    def _bound(self, request: Request, process: ProcessDefinition | None) -> tuple[dict[str, Any], Any]:
        current = services.process_snapshot(process) if process is not None else {"is_active": True, "steps": []}
        body = request_body(request, defaults=current)
        body["correlation_keys"] = _text_list(body.get("correlation_keys", ""))
        form = ProcessForm({k: v for k, v in body.items() if k != "steps"}, process=process)
        formset = _steps_formset(body.get("steps"))
        # Both are checked before either answers, so that one 400 names every problem.
        problems: list[ValidationError] = []
        for check in (lambda: form_cleaned(form), lambda: _steps_cleaned(formset)):
            try:
                check()
            except ValidationError as exc:
                problems.append(exc)
        if problems:
            detail = "; ".join(str(p.detail["detail"]) for p in problems)
            errors = {k: v for p in problems for k, v in p.detail["errors"].items()}
            raise ValidationError({"detail": detail, "errors": errors})
        return form.cleaned_data, formset.steps()

    def _answer(self, process: ProcessDefinition, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(ProcessSerializer(self.get_queryset().get(pk=process.pk)).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data, steps = self._bound(request, None)
        process = services.process_definition_create(
            actor=actor_for(request.user),
            slug=data["slug"],
            name=data["name"],
            description=data["description"],
            correlation_keys=data["correlation_keys"],
            is_active=data["is_active"],
            steps=steps,
        )
        return self._answer(process, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        process = self.get_object()
        data, steps = self._bound(request, process)
        saved = services.process_definition_update(
            process=process,
            actor=actor_for(request.user),
            name=data["name"],
            description=data["description"],
            correlation_keys=data["correlation_keys"],
            is_active=data["is_active"],
            steps=steps,
        )
        return self._answer(saved)
