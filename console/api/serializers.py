from django.contrib.auth import get_user_model
from rest_framework import serializers

from console.lib.audit import AuditEntry
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
