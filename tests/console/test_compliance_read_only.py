"""Compliance reads everything and changes nothing (ARCHITECTURE.md, roles): every URL that accepts a write answers
403 to a compliance user, whatever the method, in the console and in the API."""

import re
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver

from console.lib.audit import AuditEntry
from console.models import SodRule
from exceptions.models import Case, Category, ClassificationRule, Queue, RoutingRule
from tests.factories import failure, failures_raise, reference_data_load
from transactions.models import (
    DeadLetter,
    ExtractionRule,
    IngestSource,
    ProcessDefinition,
    RedactionRule,
    Transaction,
)
from transactions.reference import ingest_reference_data_load

pytestmark = pytest.mark.django_db

# Not business data, or not reached through the session at all; each with the reason.
EXEMPT = {
    "login": "signing in",
    "logout": "signing out",
    "saved-view-create": "a user's own saved filter of a list page, not data of the system",
    "saved-view-delete": "a user's own saved filter of a list page, not data of the system",
    "audit-verify": "verifying the chain reads it; the result is recorded as a check, no audited data changes",
    "lineage-sample-create": "an export, which compliance may do: it writes its own job and the export's audit entry",
    "api-evidence-package-create": "the same export through the API",
}
# Ingest answers 401 without a source token (it never uses the session); the admin sends non-staff to its login page.
TOKEN_ONLY = re.compile(r"^(v1/|api/v1/(events|cloudevents))")
ADMIN = re.compile(r"^admin/")
WRITE_METHODS = ("post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


def _concrete(route: str, ids: dict[str, object]) -> str:
    """The route with real objects' ids, so that a write reaches its permission check rather than a 404."""
    route = route.replace("^", "").replace("$", "")
    head = route.split("<", 1)[0].split("(", 1)[0]
    owner = next((ids[prefix] for prefix in sorted(ids, key=len, reverse=True) if head.startswith(prefix)), 1)
    route = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), route)
    route = re.sub(r"<monitor_kind:\w+>", "volume", route)
    route = re.sub(r"<int:(?:alias_id|token_id|user_id|view_id)>", "1", route)
    route = re.sub(r"<(?:int|slug|str):\w+>", str(owner), route)
    route = re.sub(r"\(\?P<pk>[^)]*\)", str(owner), route)
    return "/" + route


def _state() -> tuple[int, ...]:
    """Rows in every table (the audit chain's among them): a write (every one is audited) changes one of them. One
    statement, as the walk asks after most of its ~1,000 requests."""
    tables = sorted({m._meta.db_table for m in apps.get_models() if m._meta.managed and not m._meta.proxy})
    assert AuditEntry._meta.db_table in tables
    counts = ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return tuple(cursor.fetchone())


@pytest.fixture
def estate(db, role_user):
    """One object of each kind the console edits, so that every URL with an id names something real."""
    reference_data_load()
    ingest_reference_data_load()
    source = IngestSource.objects.create(name="crm")
    failures_raise(source, failure())
    DeadLetter.objects.create(source=source, channel="native", received_at=Case.objects.first().first_seen, reason="x")
    sod = SodRule.objects.create(first_step="a", second_step="b")
    queue = Queue.objects.order_by("id").first()
    return {
        "cases/": Case.objects.first().pk,
        "api/v1/cases/": Case.objects.first().pk,
        "transactions/": Transaction.objects.first().pk,
        "api/v1/transactions/": Transaction.objects.first().pk,
        "dead-letters/": DeadLetter.objects.first().pk,
        "ingest/extraction-rules/": ExtractionRule.objects.first().pk,
        "ingest/redaction-rules/": RedactionRule.objects.first().pk,
        "ingest/sources/": source.pk,
        "lineage/sod-rules/": sod.pk,
        "processes/": ProcessDefinition.objects.first().pk,
        "queues/manage/": queue.pk,
        "queues/": queue.slug,
        "routing/": RoutingRule.objects.first().pk,
        "taxonomy/categories/": Category.objects.first().pk,
        "taxonomy/rules/": ClassificationRule.objects.first().pk,
        "api/v1/audit-entries/": AuditEntry.objects.first().pk,
    }


def test_every_write_answers_403_to_compliance_and_nothing_changes(client, role_user, estate):
    client.force_login(role_user("compliance"))
    refused, wrote = 0, []
    state = _state()
    for route, name in _walk(get_resolver().url_patterns):
        route = route.replace("^", "")
        if name in EXEMPT or ADMIN.match(route) or TOKEN_ONLY.match(route) or "format" in route:
            continue
        url = _concrete(route, estate)
        statuses = []
        for method in WRITE_METHODS:
            status = getattr(client, method)(url, {}, content_type="application/json").status_code
            statuses.append(status)
            if status == 403:
                refused += 1
            elif status != 405:
                # A page that only reads may ignore the method (200); what it must never do is write.
                after = _state()
                if after != state:
                    wrote.append(f"{method.upper()} {url} ({name}) -> {status}")
                state = after
        writes = ("create", "edit", "delete", "assign", "replay", "activate", "comment", "merge", "split", "discard")
        # Drill-down lists are reads named after what they list (e.g. the replays behind a figure).
        if name and "drill" not in name and any(w in name for w in writes) and 403 not in statuses:
            wrote.append(f"{url} ({name}) answered {statuses}, never 403")
    assert not wrote, "compliance could write:\n" + "\n".join(wrote)
    assert refused > 60  # the walk really reached the write endpoints


def test_the_ingest_endpoints_refuse_a_session_without_a_token(client, role_user):
    client.force_login(role_user("compliance"))
    for url in ("/v1/traces", "/v1/logs", "/api/v1/events", "/api/v1/cloudevents"):
        assert client.post(url, b"[]", content_type="application/json").status_code == 401, url


def test_the_admin_does_not_let_compliance_in(client, role_user):
    client.force_login(role_user("compliance"))
    response = client.post("/admin/auth/user/add/", {"username": "mallory"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
