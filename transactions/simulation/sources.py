"""The simulator's ingest sources: one per system, with the aliases and key-extraction rules its CloudEvents need.

They are written through the same audited services an integration engineer's console edits use.
"""

from django.db import transaction

from transactions.choices import RuleAction
from transactions.models import ExtractionRule, IngestSource, IngestToken, SourceAlias
from transactions.services import (
    extraction_rule_create,
    ingest_source_create,
    ingest_token_create,
    ingest_token_revoke,
    source_alias_create,
)
from transactions.simulation.catalogue import KEY_PATHS, SYSTEMS

SIMULATOR_ACTOR = "system:simulator"


def _alias_ensure(*, source: IngestSource, pattern: str, system: str) -> None:
    if not SourceAlias.objects.filter(source=source, pattern=pattern).exists():
        source_alias_create(source=source, pattern=pattern, system=system, actor=SIMULATOR_ACTOR)


def _key_rule_ensure(*, source: IngestSource, kind_pattern: str, path: str, key_type: str) -> None:
    exists = ExtractionRule.objects.filter(
        source=source, kind_pattern=kind_pattern, action=RuleAction.BUSINESS_KEY, path=path, key_type=key_type
    ).exists()
    if not exists:
        extraction_rule_create(
            actor=SIMULATOR_ACTOR,
            source=source,
            kind_pattern=kind_pattern,
            action=RuleAction.BUSINESS_KEY,
            path=path,
            key_type=key_type,
            description=f"simulated {source.name}: {key_type} from {path}",
            # Before the reference data's defaults (positions 10 and up): for a key type the first matching rule wins,
            # and these sources write some keys elsewhere than the defaults expect (Stripe's invoice number, not id).
            position=1,
        )


@transaction.atomic
def simulator_sources_ensure() -> dict[str, IngestSource]:
    """The ingest source of every simulated system (created when missing), by system name; safe to run again."""
    sources = {source.name: source for source in IngestSource.objects.filter(name__in=SYSTEMS)}
    for system in SYSTEMS.values():
        if system.name not in sources:
            sources[system.name] = ingest_source_create(
                name=system.name, actor=SIMULATOR_ACTOR, description=f"{system.product} ({system.role}), simulated"
            )
        if system.alias_pattern:
            _alias_ensure(source=sources[system.name], pattern=system.alias_pattern, system=system.name)
    for key_path in KEY_PATHS:
        _key_rule_ensure(
            source=sources[key_path.system],
            kind_pattern=key_path.kind_pattern,
            path=key_path.path,
            key_type=key_path.key_type,
        )
    return sources


def simulator_tokens_create(*, sources: dict[str, IngestSource]) -> dict[str, tuple[IngestToken, str]]:
    """A fresh ingest token per source for one live run: (token, clear text) by system name."""
    return {
        name: ingest_token_create(source=source, actor=SIMULATOR_ACTOR, label="simulate --mode live")
        for name, source in sources.items()
    }


def simulator_tokens_revoke(*, tokens: dict[str, tuple[IngestToken, str]]) -> None:
    for token, _ in tokens.values():
        ingest_token_revoke(token=token, actor=SIMULATOR_ACTOR)
