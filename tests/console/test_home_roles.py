"""The home page per role: each count agrees with the page it links to."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from console.services import audit_chain_check_record
from console.tasks import audit_chain_check
from exceptions.models import Queue
from slas.kpis import local_day
from slas.services.rollups import rollups_rebuild
from tests.factories import PASSWORD, audit_tamper
from tests.slas.dashboard_data import build_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings):
    settings.DASHBOARD_TIME_ZONE = "Europe/Berlin"
    cache.clear()
    data = build_store(timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    today = local_day(timezone.now(), "Europe/Berlin")
    rollups_rebuild(first=today - timedelta(days=40), last=today)
    return data


def _sign_in(client, role_user, role):
    user = role_user(role)
    assert client.login(username=user.username, password=PASSWORD)
    return user


def _testid(html: str, name: str) -> str:
    return re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', html).group(1).strip()


def test_operators_see_their_queues_backlog_overdue_and_at_risk(store, client, role_user):
    user = _sign_in(client, role_user, "finance_ops")
    compliance = Queue.objects.get(slug="compliance")
    compliance.members.add(user)
    case = store.cases["control"]
    case.resolve_due_at = timezone.now() - timedelta(hours=1)
    case.save()
    html = client.get(reverse("home")).content.decode()
    row = html.split('data-testid="home-queue-compliance"')[1].split("</tr>")[0]
    assert _testid(row, "backlog") == "1" and _testid(row, "overdue") == "1" and _testid(row, "at-risk") == "1"
    assert 'data-testid="home-queue-billing"' not in html  # not their queue
    assert 'data-testid="home-sla"' not in html and 'data-testid="home-compliance"' not in html
    # The linked pages list the same rows: one active case, one overdue, one clock in the at-risk panel.
    queue_url = reverse("queue-detail", args=["compliance"])
    assert client.get(queue_url, {"active": "true"}).content.decode().count("<tr data-case=") == 1
    assert client.get(queue_url, {"active": "true", "overdue": "true"}).content.decode().count("<tr data-case=") == 1
    case.resolve_due_at = timezone.now() + timedelta(hours=1)
    case.save()
    assert client.get(queue_url, {"active": "true", "overdue": "true"}).content.decode().count("<tr data-case=") == 0
    panel = client.get(queue_url).content.decode().split('data-testid="queue-sla-at-risk"')[1].split("</table>")[0]
    assert panel.count("<tr>") - 1 == 1  # the header row and the one clock


def test_managers_see_attainment_and_the_three_worst_breaches(store, client, role_user):
    _sign_in(client, role_user, "manager")
    html = client.get(reverse("home")).content.decode()
    assert _testid(html, "home-attainment") == "50.0 %"  # 2 met, 2 breached in 30 days
    url = re.search(r'<a class="card text-decoration-none h-100" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    drill = client.get(url).content.decode()
    assert _testid(drill, "drill-total") == "4"
    worst = html.split('data-testid="home-worst-breaches"')[1].split("</table>")[0]
    assert worst.count("<tr>") - 1 == 2
    assert reverse("transaction-detail", args=[store.txns["t2"].pk]) in worst
    assert 'data-testid="home-queues"' not in html and 'data-testid="home-compliance"' not in html


def test_compliance_sees_open_control_cases_and_the_audit_chain(store, client, role_user):
    _sign_in(client, role_user, "compliance")
    # Before any check is recorded the home page says so rather than claiming an intact chain.
    assert _testid(client.get(reverse("home")).content.decode(), "home-chain") == "not checked yet"
    audit_chain_check_record(actor="system:audit-chain-check")
    html = client.get(reverse("home")).content.decode()
    assert _testid(html, "home-control-cases") == "1"
    drill = client.get(reverse("roi-drill-cases"), {"category": "control", "active": "true"}).content.decode()
    assert _testid(drill, "drill-total") == "1"
    assert _testid(html, "home-chain") == "intact"
    assert 'data-testid="home-sla"' not in html and 'data-testid="home-queues"' not in html
    # Tampering shows once the periodic check ran again.
    entry = AuditEntry.objects.order_by("id").first()
    audit_tamper("UPDATE console_auditentry SET actor = %s WHERE id = %s", ["someone else", entry.pk])
    assert audit_chain_check.delay().get(disable_sync_subtasks=False)["ok"] is False  # see test_shell's round trip
    assert _testid(client.get(reverse("home")).content.decode(), "home-chain") == f"broken at entry #{entry.pk}"
