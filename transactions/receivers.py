"""Ingest keeps derived copies of a few rows in each process (console.lib.memo): any change to them drops those."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from console.lib.memo import topic_changed
from transactions.models import ExtractionRule, IngestSource, IngestToken, RedactionRule, SourceAlias

RULES_TOPIC = "ingest-rules"
CREDENTIALS_TOPIC = "ingest-credentials"


@receiver([post_save, post_delete], sender=ExtractionRule)
@receiver([post_save, post_delete], sender=RedactionRule)
@receiver([post_save, post_delete], sender=SourceAlias)
def ingest_rules_changed(sender: Any, **kwargs: Any) -> None:
    topic_changed(RULES_TOPIC)


@receiver([post_save, post_delete], sender=IngestToken)
@receiver([post_save, post_delete], sender=IngestSource)
def ingest_credentials_changed(sender: Any, **kwargs: Any) -> None:
    topic_changed(CREDENTIALS_TOPIC)
    if sender is IngestSource:
        topic_changed(RULES_TOPIC)
