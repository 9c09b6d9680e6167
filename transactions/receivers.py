"""Receivers of the transactions app itself: ingest's memoised rows (console.lib.memo) are dropped when they change,
and interface discovery follows correlation."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from console.lib.memo import topic_changed
from transactions.models import ExtractionRule, IngestSource, IngestToken, RedactionRule, SourceAlias
from transactions.signals import transactions_correlated

RULES_TOPIC = "ingest-rules"
CREDENTIALS_TOPIC = "ingest-credentials"
DISCOVERY_CHUNK = 500


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


@receiver(transactions_correlated)
def discover_touched_interfaces(sender: Any, txn_ids: list[int], **kwargs: Any) -> None:
    """Hops of the transactions a batch touched are derived again (in a task: correlation stays fast)."""
    # Imported here: services.ingest imports this module's topic names, and tasks import services.
    from transactions.tasks import discover_interfaces

    for start in range(0, len(txn_ids), DISCOVERY_CHUNK):
        discover_interfaces.delay(list(txn_ids[start : start + DISCOVERY_CHUNK]))
