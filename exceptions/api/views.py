"""The cases API: list and detail (queryset + serializer + filterset), and the actions operators take on cases.

Every action sends the case version it was based on: a stale one answers 409, a case outside the caller's queues 403,
input the service refuses 400 with the reason. Reads need console.view_cases; the services decide who may act.
"""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, serializer_validated
from console.lib.capabilities import ACT_ON_CASES, VIEW_CASES
from console.lib.errors import NotPermitted
from exceptions.api.serializers import (
    AssignSerializer,
    BulkResultSerializer,
    BulkSerializer,
    CaseDetailSerializer,
    CaseSerializer,
    CommentSerializer,
    MergeSerializer,
    ReplayBulkResultSerializer,
    ReplayBulkSerializer,
    ReplayRequestSerializer,
    ReplaySerializer,
    SplitSerializer,
    TransitionSerializer,
)
from exceptions.filters import CaseFilterSet
from exceptions.models import Case
from exceptions.permissions import can_act_on_case
from exceptions.selectors import case_detail_list, case_has_occurrence, case_list
from exceptions.services import (
    case_assign,
    case_comment,
    case_transition,
    cases_bulk,
    cases_merge,
    occurrence_split,
    replay_request,
    replays_request_bulk,
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


READ_ERRORS = {
    401: _error("not authenticated"),
    403: _error("the caller lacks console.view_cases"),
}
LIST_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="an invalid filter value: the problems per filter"),
    **READ_ERRORS,
}
DETAIL_ERRORS = {**READ_ERRORS, 404: _error("no such case")}
ACTION_ERRORS = {
    400: _error("invalid input, or an action the case does not allow (the reason is in detail)"),
    401: _error("not authenticated"),
    403: _error("the caller may not act on this case (compliance never; finance operations only in their queues)"),
    404: _error("no such case"),
    409: _error("the case changed since the version sent: reload it and decide again"),
}
BULK_ERRORS = {
    400: _error("invalid input"),
    401: _error("not authenticated"),
    403: _error("the caller may not act on cases"),
}


def _require_acting_role(request: Request) -> None:
    # Checked before any version or input check: compliance gets 403 for every write, whatever it sent.
    if not request.user.has_perm(ACT_ON_CASES):
        raise NotPermitted("your role may read cases but not act on them")


class CasePagination(CursorPagination):
    """Newest occurrence first, stable under inserts; the cursor needs a nearly unique leading column, which rules
    out priority (four values) as the first sort key."""

    ordering = ("-last_seen", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cases (repeated failures grouped by fingerprint), filtered like the queue pages, and the actions on them."""

    serializer_class = CaseSerializer
    filterset_class = CaseFilterSet
    pagination_class = CasePagination
    permission_classes = [HasCapability]
    required_capability = VIEW_CASES

    def get_queryset(self) -> QuerySet[Case]:
        # The detail also answers for merged cases (old links keep working); actions only apply to live ones.
        return case_detail_list() if self.action == "retrieve" else case_list()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return CaseDetailSerializer if self.action == "retrieve" else CaseSerializer

    @extend_schema(
        summary="List cases",
        description="Live cases (merged ones are folded into their target), newest occurrence first, "
        "cursor-paginated; filters as on the queue pages, e.g. ?queue=billing&status=open&category=mapping.",
        responses={200: CaseSerializer(many=True), **LIST_ERRORS},
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="One case",
        description="The case with its rule explanation, suggested action, latest 50 occurrences, latest 200 "
        "activities and latest 20 replays. Merged cases still answer, with merged_into set.",
        responses={200: CaseDetailSerializer, **DETAIL_ERRORS},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    def _actionable(self, request: Request) -> Case:
        _require_acting_role(request)
        case = self.get_object()
        if not can_act_on_case(request.user, case):
            raise NotPermitted("you may only act on cases in the queues you belong to")
        return case

    def _answer(self, case_id: int) -> Response:
        # The case as it is now: its new version is what the caller's next action must send.
        return Response(CaseSerializer(case_list().get(pk=case_id)).data)

    @extend_schema(
        summary="Assign a case",
        request=AssignSerializer,
        responses={200: CaseSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def assign(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(AssignSerializer, request).validated_data
        case_assign(case_id=case.pk, assignee=data["assignee"], actor=request.user, expected_version=data["version"])
        return self._answer(case.pk)

    @extend_schema(
        summary="Comment on a case",
        request=CommentSerializer,
        responses={200: CaseSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def comment(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(CommentSerializer, request).validated_data
        case_comment(case_id=case.pk, body=data["body"], actor=request.user, expected_version=data["version"])
        return self._answer(case.pk)

    @extend_schema(
        summary="Change a case's status",
        description="open -> in_progress -> resolved, also waiting; ignored is a snooze and needs snooze_until or "
        "snooze_occurrences.",
        request=TransitionSerializer,
        responses={200: CaseSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def transition(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(TransitionSerializer, request).validated_data
        case_transition(
            case_id=case.pk,
            status=data["status"],
            actor=request.user,
            expected_version=data["version"],
            note=data["note"],
            snooze_until=data["snooze_until"],
            snooze_occurrences=data["snooze_occurrences"],
        )
        return self._answer(case.pk)

    @extend_schema(
        summary="Merge cases into this one",
        description="Folds the cases listed into this one (their occurrences move, their future occurrences follow); "
        "the merged cases resolve with merged_into set. `version` is this case's; the caller must be allowed to act "
        "on every case named.",
        request=MergeSerializer,
        responses={200: CaseSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def merge(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(MergeSerializer, request).validated_data
        sources = sorted(set(data["cases"]))
        if case.pk in sources:
            raise ValidationError({"detail": f"cases: a case cannot be merged into itself (#{case.pk})"})
        cases_merge(target_id=case.pk, source_ids=sources, actor=request.user, expected_version=data["version"])
        return self._answer(case.pk)

    @extend_schema(
        summary="Split an occurrence out into a case of its own",
        description="Moves one occurrence to a new case; future occurrences like it (same fingerprint, and the text "
        "given, or else the whole message) follow the new case. Answers the new case.",
        request=SplitSerializer,
        responses={201: CaseSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def split(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(SplitSerializer, request).validated_data
        if not case_has_occurrence(case=case, occurrence_id=data["occurrence"]):
            reason = f"occurrence: #{data['occurrence']} is not an occurrence of case #{case.pk}"
            raise ValidationError({"detail": reason})
        new = occurrence_split(
            occurrence_id=data["occurrence"],
            actor=request.user,
            message_contains=data["message_contains"],
            expected_version=data["version"],
        )
        return Response(CaseSerializer(case_list().get(pk=new.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replay a failed occurrence",
        description="Sends the occurrence's stored record (or the repaired payload given) to its system's replay "
        "target, with an Idempotency-Key derived from the occurrence and the payload (SHA-256; a repaired payload "
        "is a new key) and the replay id as Closeloop-Replay-Id. Only for retryable categories; one replay per "
        "occurrence (and per business object of the target) in flight; an occurrence whose earlier replay got "
        "through, or a business object another occurrence's replay submitted, is refused (400) unless `reason` is "
        "given. Answers 202: the send happens in the background, retried with backoff when the target answers "
        "429/502/503/504 or refuses the connection; the replay succeeds (and the case resolves) when a success "
        "event carrying attribute closeloop.replay_id (the id or the key) arrives.",
        request=ReplayRequestSerializer,
        responses={202: ReplaySerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def replay(self, request: Request, pk: str | None = None) -> Response:
        case = self._actionable(request)
        data = serializer_validated(ReplayRequestSerializer, request).validated_data
        replay = replay_request(
            case_id=case.pk,
            actor=request.user,
            expected_version=data["version"],
            occurrence_id=data["occurrence"],
            payload=data["payload"],
            reason=data["reason"],
        )
        return Response(ReplaySerializer(replay).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="One action on many cases",
        description="Each case carries its own version and succeeds or fails alone: "
        '{"done": [ids], "failed": {"id": "reason"}}.',
        request=BulkSerializer,
        responses={200: BulkResultSerializer, **BULK_ERRORS},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def bulk(self, request: Request) -> Response:
        _require_acting_role(request)
        serializer = serializer_validated(BulkSerializer, request)
        data = serializer.validated_data
        result = cases_bulk(
            action=data["action"],
            versions={c["id"]: c["version"] for c in data["cases"]},
            actor=request.user,
            **serializer.params(),
        )
        return Response({"done": result.done, "failed": {str(k): v for k, v in result.failed.items()}})

    @extend_schema(
        summary="Replay every case matching a filter",
        description="Replays the latest occurrence of each live case matching the filters of GET /cases/ (at most "
        "500 cases; each succeeds or fails alone).",
        request=ReplayBulkSerializer,
        responses={200: ReplayBulkResultSerializer, **BULK_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="replay-bulk", filter_backends=[], pagination_class=None)
    def replay_bulk(self, request: Request) -> Response:
        _require_acting_role(request)
        data = serializer_validated(ReplayBulkSerializer, request).validated_data
        result = replays_request_bulk(filters=data["filters"], actor=request.user)
        return Response(
            {
                "done": [{"case": case_id, "replay": replay_id} for case_id, replay_id in result.done.items()],
                "failed": {str(k): v for k, v in result.failed.items()},
            }
        )
