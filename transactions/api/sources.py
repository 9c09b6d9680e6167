"""The ingest-side API for integration engineers: ingest sources and their tokens, and the dead-letter store (list with
filters, read, replay, repair, discard, bulk replay).

The same forms, selectors and audited services as the console pages in views/ingest.py. A new token's clear text is in
the creation answer only (never stored, never shown again, answered with no-store). Dead letters carry a version: a
replay, repair or discard based on a stale one answers 409.
"""

import json
from typing import Any

from django.db.models import Prefetch
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from console.lib.api import ErrorSerializer, HasCapability, form_cleaned, request_body, serializer_validated
from console.lib.audit import actor_for
from console.lib.capabilities import MANAGE_INGEST, REPLAY_DEAD_LETTERS
from transactions import selectors, services
from transactions.api.filters import DeadLetterFilterSet
from transactions.forms import DeadLetterActionForm, DeadLetterRepairForm, IngestSourceForm, IngestTokenForm
from transactions.models import DeadLetter, IngestSource, IngestToken


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _errors(capability: str, noun: str) -> dict[str, dict]:
    read = {401: _error("not authenticated"), 403: _error(f"the caller lacks {capability}")}
    detail = {**read, 404: _error(f"no such {noun}")}
    write = {**detail, 400: _error("invalid input, or an action the object does not allow: `detail` says why")}
    return {"read": read, "detail": detail, "write": write}


SOURCE_ERRORS = _errors(MANAGE_INGEST, "ingest source")
LETTER_ERRORS = _errors(REPLAY_DEAD_LETTERS, "dead letter")
STALE = {409: _error("the dead letter changed since the version sent: reload it and decide again")}


# ---- Shapes ---------------------------------------------------------------------------------------------------------


class IngestTokenSerializer(serializers.ModelSerializer):
    """A token as listed: its first characters tell it apart; the rest is never shown again."""

    class Meta:
        model = IngestToken
        fields = ["id", "prefix", "label", "created_at", "created_by", "revoked_at", "last_used_at"]
        read_only_fields = fields


class NewIngestTokenSerializer(IngestTokenSerializer):
    token = serializers.CharField(help_text="the token in clear: shown in this answer only; send it as Bearer")

    class Meta(IngestTokenSerializer.Meta):
        fields = [*IngestTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class IngestSourceSerializer(serializers.ModelSerializer):
    """An ingest source: a sender with tokens of its own; `name` never changes."""

    tokens = IngestTokenSerializer(many=True, read_only=True, help_text="newest first, revoked ones included")

    class Meta:
        model = IngestSource
        fields = ["id", "name", "description", "is_active", "created_at", "tokens"]
        read_only_fields = ["id", "is_active", "created_at", "tokens"]


class IngestTokenInputSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, help_text="e.g. prod gateway")


class DeadLetterSerializer(serializers.ModelSerializer):
    """A record ingest refused, with why and what arrived; `version` is what an action must send back."""

    source = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "source",
            "channel",
            "received_at",
            "record_index",
            "reason",
            "raw",
            "raw_text",
            "status",
            "replay_count",
            "last_replayed_at",
            "last_replay_outcome",
            "version",
        ]
        read_only_fields = fields


class DeadLetterActionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="the dead letter's version this action is based on")


class DeadLetterRepairSerializer(DeadLetterActionSerializer):
    raw = serializers.JSONField(help_text="the repaired record: a JSON object (or its JSON text) replayed instead")


class BulkLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    version = serializers.IntegerField(min_value=1)


class DeadLetterBulkReplaySerializer(serializers.Serializer):
    dead_letters = BulkLetterSerializer(many=True, allow_empty=False, max_length=services.MAX_BULK_REPLAY)

    def validate_dead_letters(self, value: list[dict]) -> list[dict]:
        ids = [letter["id"] for letter in value]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("a dead letter is listed twice")
        return value


class DeadLetterBulkResultSerializer(serializers.Serializer):
    replayed = serializers.DictField(child=serializers.CharField(), help_text="dead letter id -> how it went")
    failed = serializers.DictField(child=serializers.CharField(), help_text="dead letter id -> why it was not replayed")


# ---- Ingest sources and tokens --------------------------------------------------------------------------------------


class SourcePagination(CursorPagination):
    ordering = ("name", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List ingest sources",
        responses={
            200: IngestSourceSerializer(many=True),
            400: _error("unknown query parameter"),
            **SOURCE_ERRORS["read"],
        },
    ),
    retrieve=extend_schema(
        summary="One ingest source", responses={200: IngestSourceSerializer, **SOURCE_ERRORS["detail"]}
    ),
    create=extend_schema(
        summary="Create an ingest source",
        description="Audited. Then create a token for it.",
        responses={201: IngestSourceSerializer, **SOURCE_ERRORS["write"]},
    ),
)
class IngestSourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Senders of events, each authenticated by its own tokens."""

    serializer_class = IngestSourceSerializer
    pagination_class = SourcePagination
    permission_classes = [HasCapability]
    required_capability = MANAGE_INGEST

    def get_queryset(self) -> Any:
        tokens = Prefetch("tokens", queryset=IngestToken.objects.order_by("-created_at", "-id"))
        return selectors.ingest_source_list().prefetch_related(tokens).order_by("name", "id")

    def _answer(self, source: IngestSource, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(IngestSourceSerializer(self.get_queryset().get(pk=source.pk)).data, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = form_cleaned(IngestSourceForm(request_body(request)))
        source = services.ingest_source_create(
            name=data["name"], description=data["description"], actor=actor_for(request.user)
        )
        return self._answer(source, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Create a token for an ingest source",
        description="Audited. The answer holds the token in clear, once: only its hash is stored.",
        request=IngestTokenInputSerializer,
        responses={201: NewIngestTokenSerializer, **SOURCE_ERRORS["write"]},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def tokens(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()
        data = form_cleaned(IngestTokenForm(request_body(request)))
        token, clear = services.ingest_token_create(source=source, label=data["label"], actor=actor_for(request.user))
        response = Response({**IngestTokenSerializer(token).data, "token": clear}, status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)  # the clear token must not linger in a cache
        return response

    @extend_schema(
        summary="Revoke a token of an ingest source",
        description="Audited. Senders using it get 401 from their next request on; revoking a revoked token changes "
        "nothing. This cannot be undone.",
        request=None,
        responses={200: IngestTokenSerializer, **SOURCE_ERRORS["detail"]},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"tokens/(?P<token_id>\d+)/revoke",
        filter_backends=[],
        pagination_class=None,
    )
    def token_revoke(self, request: Request, pk: str | None = None, token_id: str = "") -> Response:
        source = self.get_object()
        token = selectors.ingest_token_list(source=source).filter(pk=int(token_id)).first()
        if token is None:
            raise NotFound(f"source {source.name} has no token #{token_id}")
        revoked = services.ingest_token_revoke(token=token, actor=actor_for(request.user))
        return Response(IngestTokenSerializer(revoked).data)


# ---- Dead letters ---------------------------------------------------------------------------------------------------


class DeadLetterPagination(CursorPagination):
    """Newest first, as on the console page."""

    ordering = ("-received_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List dead letters",
        description="Newest first; any status unless ?status= is given (the console page shows pending ones).",
        responses={
            200: DeadLetterSerializer(many=True),
            # django-filter answers an invalid value with its problems per filter, without `detail`.
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="an invalid filter value or an unknown parameter"),
            **LETTER_ERRORS["read"],
        },
    ),
    retrieve=extend_schema(summary="One dead letter", responses={200: DeadLetterSerializer, **LETTER_ERRORS["detail"]}),
)
class DeadLetterViewSet(viewsets.ReadOnlyModelViewSet):
    """Records ingest refused, kept with their reason so that they can be repaired and replayed."""

    serializer_class = DeadLetterSerializer
    filterset_class = DeadLetterFilterSet
    pagination_class = DeadLetterPagination
    permission_classes = [HasCapability]
    required_capability = REPLAY_DEAD_LETTERS

    def get_queryset(self) -> Any:
        return selectors.dead_letter_list()

    def _answer(self, letter: DeadLetter) -> Response:
        return Response(DeadLetterSerializer(selectors.dead_letter_get(dead_letter_id=letter.pk)).data)

    @extend_schema(
        summary="Replay a dead letter",
        description="Sends the stored record through ingest again (audited). Accepted: the letter is replayed; "
        "refused again: it stays pending, last_replay_outcome says why, and the attempt is a new dead letter.",
        request=DeadLetterActionSerializer,
        responses={200: DeadLetterSerializer, **LETTER_ERRORS["write"], **STALE},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def replay(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        version = form_cleaned(DeadLetterActionForm(request_body(request)))["version"]
        services.dead_letter_replay(dead_letter=letter, actor=actor_for(request.user), expected_version=version)
        return self._answer(letter)

    @extend_schema(
        summary="Repair and replay a dead letter",
        description="Replays the record given instead of the stored one (audited with before and after); the letter "
        "keeps the repaired record.",
        request=DeadLetterRepairSerializer,
        responses={200: DeadLetterSerializer, **LETTER_ERRORS["write"], **STALE},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def repair(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        body = request_body(request)
        if "raw" in body and not isinstance(body["raw"], str):
            # The page's form reads the record as JSON text; an API client sends the object itself.
            body["raw"] = json.dumps(body["raw"])
        data = form_cleaned(DeadLetterRepairForm(body))
        services.dead_letter_replay(
            dead_letter=letter, actor=actor_for(request.user), expected_version=data["version"], raw=data["raw"]
        )
        return self._answer(letter)

    @extend_schema(
        summary="Discard a dead letter",
        description="Audited; the letter stays listed as discarded.",
        request=DeadLetterActionSerializer,
        responses={200: DeadLetterSerializer, **LETTER_ERRORS["write"], **STALE},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def discard(self, request: Request, pk: str | None = None) -> Response:
        letter = self.get_object()
        version = form_cleaned(DeadLetterActionForm(request_body(request)))["version"]
        services.dead_letter_discard(dead_letter=letter, actor=actor_for(request.user), expected_version=version)
        return self._answer(letter)

    @extend_schema(
        summary="Replay many dead letters",
        description=f"Each letter carries its own version and is replayed (and audited) alone; a stale or handled "
        f"one is reported in `failed` without holding back the others. At most {services.MAX_BULK_REPLAY}.",
        request=DeadLetterBulkReplaySerializer,
        responses={200: DeadLetterBulkResultSerializer, **LETTER_ERRORS["read"], 400: _error("invalid input")},
    )
    @action(detail=False, methods=["post"], url_path="replay-bulk", filter_backends=[], pagination_class=None)
    def replay_bulk(self, request: Request) -> Response:
        serializer = serializer_validated(DeadLetterBulkReplaySerializer, request)
        versions = {letter["id"]: letter["version"] for letter in serializer.validated_data["dead_letters"]}
        outcome = services.dead_letters_replay_bulk(versions=versions, actor=actor_for(request.user))
        return Response(
            {
                "replayed": {str(k): v for k, v in outcome.replayed.items()},
                "failed": {str(k): v for k, v in outcome.failed.items()},
            }
        )
