from django.contrib.auth import get_user_model
from rest_framework import serializers

from console.lib.audit import AuditEntry
from console.models import EvidenceJob
from console.roles import ROLES


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "occurred_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "prev_hash",
            "entry_hash",
        ]


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "roles"]

    def get_roles(self, user) -> list[str]:
        names = set(user.groups.values_list("name", flat=True))
        return [role for role in ROLES if role in names]


class EvidenceJobRequestSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="transactions started at or after")
    until = serializers.DateTimeField(help_text="transactions started before")
    entity = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class EvidenceJobSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()

    class Meta:
        model = EvidenceJob
        fields = [
            "id",
            "status",
            "requested_by",
            "since",
            "until",
            "entity",
            "total",
            "done",
            "rows",
            "sha256",
            "error",
            "created_at",
            "finished_at",
            "download",
        ]

    def get_download(self, job: EvidenceJob) -> str | None:
        """Where the zip is once the job is done (this same URL answers with it then)."""
        request = self.context.get("request")
        if job.status != EvidenceJob.Status.DONE or request is None:
            return None
        return request.build_absolute_uri()
