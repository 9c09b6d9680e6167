"""The queues API for managers: list, read, create, change (targets, default, lead, notification address) and
membership, through the console's forms (views/manage.py) and audited services (services/queues.py).

Durations are written as on the pages (4h, 2d, 1d 4h); the lead and members are named by username. Queues carry no
version: a change applies to the queue as it is when the write takes its row lock.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, form_cleaned, request_body
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from exceptions import selectors, services
from exceptions.forms import QueueForm, QueueMemberForm
from exceptions.models import Queue
from transactions.durations import duration_label


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {401: _error("not authenticated"), 403: _error(f"the caller lacks {EDIT_RULES}")}
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such queue")}
WRITE_ERRORS = {**DETAIL_ERRORS, 400: _error("invalid input: `detail` names every problem, `errors` lists them")}


class QueuePagination(CursorPagination):
    ordering = ("name", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class DurationLabelField(serializers.CharField):
    """A duration as the pages write it: 4h, 2d, 90m or 1d 4h."""

    def to_representation(self, value: Any) -> str:
        return duration_label(value)


class QueueSerializer(serializers.ModelSerializer):
    """A queue; `triage_target` and `resolve_target` apply to cases created from then on."""

    lead = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(), allow_null=True, required=False
    )
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    triage_target = DurationLabelField(help_text="time to assign a new case, e.g. 4h")
    resolve_target = DurationLabelField(help_text="time to resolve a case, e.g. 2d")

    class Meta:
        model = Queue
        fields = [
            "id",
            "slug",
            "name",
            "is_default",
            "triage_target",
            "resolve_target",
            "notify_email",
            "lead",
            "members",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "members", "created_at", "updated_at"]


class QueueMemberSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="username of someone who may act on cases (finance_ops, manager)")


class QueueApiForm(QueueForm):
    """The page's form, naming the lead by username."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lead"].to_field_name = "username"


class QueueMemberApiForm(QueueMemberForm):
    """The page's form, naming the new member by username."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].to_field_name = "username"


@extend_schema_view(
    list=extend_schema(
        summary="List queues",
        responses={200: QueueSerializer(many=True), 400: _error("an unknown query parameter"), **READ_ERRORS},
    ),
    retrieve=extend_schema(summary="One queue", responses={200: QueueSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        summary="Create a queue",
        description="Audited. Exactly one queue is the default: making this one the default takes it from the other.",
        responses={201: QueueSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a queue",
        description="Audited; the fields sent replace the current ones. The slug never changes.",
        responses={200: QueueSerializer, **WRITE_ERRORS},
    ),
)
class QueueViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Work queues of cases, their targets and members (queues are not deleted: cases and rules refer to them)."""

    serializer_class = QueueSerializer
    pagination_class = QueuePagination
    permission_classes = [HasCapability]
    required_capability = EDIT_RULES
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Queue]:
        return selectors.queue_manage_list().prefetch_related("members")

    def _answer(self, queue: Queue, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(QueueSerializer(self.get_queryset().get(pk=queue.pk)).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = QueueApiForm(request_body(request))
        form_cleaned(form)
        queue = services.queue_create(actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(queue, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queue = self.get_object()
        current = {**services.queue_snapshot(queue), "lead": queue.lead.get_username() if queue.lead else ""}
        form = QueueApiForm(request_body(request, defaults=current), queue=queue)
        form_cleaned(form)
        saved = services.queue_update(queue=queue, actor=actor_for(request.user), **form.service_kwargs())
        return self._answer(saved)

    @extend_schema(
        summary="Add a member to a queue",
        description="Audited. Finance operations act on the cases of the queues they belong to.",
        request=QueueMemberSerializer,
        responses={200: QueueSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def members(self, request: Request, pk: str | None = None) -> Response:
        queue = self.get_object()
        form = QueueMemberApiForm(request_body(request), queue=queue)
        user = form_cleaned(form)["user"]
        services.queue_member_add(queue=queue, user=user, actor=actor_for(request.user))
        return self._answer(queue)

    @extend_schema(
        summary="Remove a member from a queue",
        description="Audited. Cases assigned to the member stay assigned.",
        parameters=[OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH)],
        request=None,
        responses={200: QueueSerializer, **WRITE_ERRORS},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"members/(?P<username>[^/]+)",
        filter_backends=[],
        pagination_class=None,
    )
    def member_remove(self, request: Request, pk: str | None = None, username: str = "") -> Response:
        queue = self.get_object()
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except ObjectDoesNotExist as exc:
            raise NotFound(f"no user named {username!r}") from exc
        services.queue_member_remove(queue=queue, user=user, actor=actor_for(request.user))
        return self._answer(queue)
