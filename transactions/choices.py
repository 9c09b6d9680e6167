from django.db import models


class Channel(models.TextChoices):
    NATIVE = "native", "Native events API"
    OTLP_TRACES = "otlp_traces", "OTLP traces"
    OTLP_LOGS = "otlp_logs", "OTLP logs"
    CLOUDEVENTS = "cloudevents", "CloudEvents"


class EventStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"


class RuleAction(models.TextChoices):
    BUSINESS_KEY = "business_key", "Extract a business key"
    MARK_FAILED = "mark_failed", "Mark the record failed"


class RedactionAction(models.TextChoices):
    DROP = "drop", "Drop"
    MASK = "mask", "Mask"
    HASH = "hash", "Hash (keeps equal values joinable)"


class DeadLetterStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    REPLAYED = "replayed", "Replayed"
    DISCARDED = "discarded", "Discarded"
