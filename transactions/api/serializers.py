from rest_framework import serializers

from transactions.models import Transaction


class TransactionSerializer(serializers.ModelSerializer):
    process = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Transaction
        fields = [
            "id",
            "url",
            "process",
            "status",
            "started_at",
            "last_event_at",
            "event_count",
            "error_count",
            "systems",
            "business_keys",
            "next_step",
            "next_due_at",
        ]

    def get_url(self, txn: Transaction) -> str:
        return f"/transactions/{txn.pk}/"


class TimelineEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    system = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration_ms = serializers.IntegerField(allow_null=True)
    is_span = serializers.BooleanField()
    critical = serializers.BooleanField()
    trace_id = serializers.CharField(allow_null=True)
    span_id = serializers.CharField(allow_null=True)
    parent_span_id = serializers.CharField(allow_null=True)
    links = serializers.ListField(child=serializers.DictField())
    business_keys = serializers.DictField(child=serializers.CharField())
    entity = serializers.CharField(allow_null=True)
    amount = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    currency = serializers.CharField(allow_null=True)
    approval = serializers.DictField(allow_null=True)
    error = serializers.DictField(allow_null=True)
    attributes = serializers.DictField()
    channel = serializers.CharField()
    received_at = serializers.DateTimeField()


class GapSerializer(serializers.Serializer):
    from_system = serializers.CharField()
    to_system = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    seconds = serializers.FloatField()


class ExpectedStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    system = serializers.CharField(allow_blank=True)
    kind = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.BooleanField()


class MergedFromSerializer(serializers.Serializer):
    absorbed_id = serializers.IntegerField()
    via_key = serializers.CharField()
    merged_at = serializers.DateTimeField()


class TimelineSerializer(serializers.Serializer):
    transaction = TransactionSerializer()
    lanes = serializers.ListField(child=serializers.CharField())
    items = TimelineEventSerializer(many=True)
    gaps = GapSerializer(many=True)
    critical_path = serializers.ListField(child=serializers.IntegerField())
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_to_end_ms = serializers.IntegerField(allow_null=True)
    expected_next = ExpectedStepSerializer(allow_null=True)
    merged_from = MergedFromSerializer(many=True)
