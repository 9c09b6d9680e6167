"""Console pages of process definitions: list, create and edit (name, correlating key types, steps), audited."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve, reverse

from console.lib.audit import AuditEntry, audit_verify
from console.lib.errors import DomainError
from console.lib.navigation import navigation_for
from transactions.durations import duration_label, duration_parse
from transactions.models import ProcessDefinition, ProcessStep
from transactions.reference import process_reference_data_load
from transactions.services import correlating_key_types, process_specs
from transactions.views import processes as process_views

OTHER_ROLES = ["finance_ops", "compliance", "integration"]


@pytest.fixture
def processes(db) -> None:
    process_reference_data_load()


def login(role_user, role: str) -> Client:
    client = Client()
    client.force_login(role_user(role, username=f"{role}-user"))
    return client


@pytest.fixture
def manager(role_user) -> Client:
    return login(role_user, "manager")


def o2c() -> ProcessDefinition:
    return ProcessDefinition.objects.get(slug="order-to-cash")


def process_data(process: ProcessDefinition | None = None, *, steps: list[dict] | None = None, **fields: Any) -> dict:
    """A POST of the process page: the process fields and the steps formset (as the page shows them, plus changes)."""
    data: dict[str, Any] = {
        "slug": process.slug if process else "dunning",
        "name": process.name if process else "Dunning",
        "description": process.description if process else "",
        "correlation_keys": ", ".join(process.correlation_keys) if process else "invoice, dunning_notice",
        "is_active": "on",
    }
    data.update(fields)
    if steps is None:
        steps = [
            {
                "position": s.position,
                "name": s.name,
                "system": s.system,
                "kind_pattern": s.kind_pattern,
                "allowance": duration_label(s.allowance),
                "required": "on" if s.required else "",
            }
            for s in (process.steps.order_by("position") if process else [])
        ]
    initial = len(process.steps.all()) if process else 0
    data.update({"steps-TOTAL_FORMS": len(steps), "steps-INITIAL_FORMS": initial})
    for i, step in enumerate(steps):
        for name, value in step.items():
            if value != "":
                data[f"steps-{i}-{name}"] = value
    return {k: v for k, v in data.items() if v is not None}


def state() -> dict:
    return {
        "audit": AuditEntry.objects.count(),
        "processes": list(ProcessDefinition.objects.order_by("pk").values()),
        "steps": list(ProcessStep.objects.order_by("pk").values()),
    }


def last_audit(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-id").first()
    assert entry is not None, f"no audit entry {action}"
    return entry


# ---- Access -----------------------------------------------------------------------------------------------------


PAGES = [("process-list", False), ("process-create", False), ("process-edit", True)]


def url_of(name: str, with_id: bool) -> str:
    return reverse(name, args=[o2c().pk]) if with_id else reverse(name)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["manager", "admin"])
@pytest.mark.parametrize(("name", "with_id"), PAGES)
def test_managers_and_admins_open_the_pages(role_user, processes, role, name, with_id):
    response = login(role_user, role).get(url_of(name, with_id))
    assert response.status_code == 200
    if name == "process-list":
        page = response.content.decode()
        assert "Order to cash" in page and "Payment received" in page and "30d" in page


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize(("name", "with_id"), PAGES)
def test_other_roles_get_403(role_user, processes, role, name, with_id):
    assert login(role_user, role).get(url_of(name, with_id)).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize("name", ["process-create", "process-edit"])
def test_other_roles_cannot_post_and_nothing_changes(role_user, processes, role, name):
    client = login(role_user, role)  # signing in is audited: count from here
    before = state()
    data = process_data(o2c(), name="Hijacked") if name == "process-edit" else process_data(steps=[step(1)])
    assert client.post(url_of(name, name == "process-edit"), data).status_code == 403
    assert state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "sees"), [("manager", True), ("admin", True)] + [(r, False) for r in OTHER_ROLES])
def test_navigation(role_user, role, sees):
    labels = {i.label for _, items in navigation_for(role_user(role)) for i in items}
    assert ("Processes" in labels) is sees


def test_the_project_urls_reach_the_process_pages():
    assert resolve("/processes/").func is process_views.process_list


# ---- Editing --------------------------------------------------------------------------------------------------------


def step(position: int, **fields: Any) -> dict:
    data = {
        "position": position,
        "name": f"Step {position}",
        "system": "",
        "kind_pattern": f"step{position}.done",
        "allowance": "4h",
        "required": "on",
    }
    data.update(fields)
    return data


@pytest.mark.django_db
def test_edit_name_keys_and_steps_with_audit(manager, processes):
    process = o2c()
    steps = process_data(process)
    current = [
        {k.split("-", 2)[2]: v for k, v in steps.items() if k.startswith(f"steps-{i}-")}
        for i in range(process.steps.count())
    ]
    current[1]["allowance"] = "1d 4h"  # Sales order created: 4h -> 28h
    current[4]["DELETE"] = "on"  # Evidence captured goes
    current[3]["required"] = ""  # payment becomes optional
    current.append(step(6, name="Dunning sent", system="billing", kind_pattern="dunning.sent", allowance="2d"))
    data = process_data(process, steps=current, name="Order to cash (EU)", correlation_keys="order, Invoice , payment")
    response = manager.post(reverse("process-edit", args=[process.pk]), data)
    assert response.status_code == 302, response.context and (
        response.context["form"].errors,
        response.context["steps"].errors,
        response.context["steps"].non_form_errors(),
    )
    process.refresh_from_db()
    assert process.name == "Order to cash (EU)" and process.correlation_keys == ["order", "invoice", "payment"]
    rows = list(process.steps.order_by("position").values_list("position", "name", "allowance", "required", "system"))
    assert [r[1] for r in rows] == [
        "Contract approved",
        "Sales order created",
        "Invoice posted",
        "Payment received",
        "Dunning sent",
    ]
    assert rows[1][2] == timedelta(hours=28) and rows[3][3] is False and rows[4][4] == "billing"
    entry = last_audit("process.updated")
    assert entry.actor == "user:manager-user" and entry.object_id == str(process.pk)
    assert entry.before["correlation_keys"] == ["contract", "order", "invoice", "payment"]
    assert entry.after["correlation_keys"] == ["order", "invoice", "payment"]
    assert len(entry.before["steps"]) == 5 and entry.after["steps"][1]["allowance"] == "1d 4h"
    assert audit_verify().ok
    # Correlation reads the definitions as they are now.
    assert "contract" not in correlating_key_types()
    spec = next(s for s in process_specs() if s.process_id == process.pk)
    assert [s.name for s in spec.steps][-1] == "Dunning sent"


@pytest.mark.django_db
def test_saving_an_unchanged_process_writes_nothing(manager, processes):
    before = state()
    assert manager.post(reverse("process-edit", args=[o2c().pk]), process_data(o2c())).status_code == 302
    assert state() == before


@pytest.mark.django_db
def test_reordering_steps_by_position(manager, processes):
    process = ProcessDefinition.objects.get(slug="close-evidence")
    data = process_data(process, steps=[step(2, name="Captured"), step(1, name="Approved")])
    assert manager.post(reverse("process-edit", args=[process.pk]), data).status_code == 302
    assert list(process.steps.order_by("position").values_list("name", flat=True)) == ["Approved", "Captured"]


@pytest.mark.django_db
def test_deactivate_a_process(manager, processes):
    process = ProcessDefinition.objects.get(slug="customer-master-sync")
    data = process_data(process, is_active=None)
    assert manager.post(reverse("process-edit", args=[process.pk]), data).status_code == 302
    process.refresh_from_db()
    assert not process.is_active and last_audit("process.updated").after["is_active"] is False
    assert "customer_sync" not in correlating_key_types()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ("order, customer", "customer is a broad key"),
        ("legal_entity, vendor", "legal_entity, vendor are broad keys"),
        ("order, Order", "listed twice"),
        ("order, sales order", "lower-case letters"),
    ],
)
def test_broad_or_malformed_key_types_are_refused(manager, processes, keys, error):
    before = state()
    response = manager.post(reverse("process-edit", args=[o2c().pk]), process_data(o2c(), correlation_keys=keys))
    assert response.status_code == 200
    assert any(error in e for e in response.context["form"].errors["correlation_keys"])
    assert state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([step(1, allowance="soon")], "is not a duration"),
        ([step(1, allowance="400d")], "at most 366 days"),
        ([step(1, kind_pattern="")], "required"),
        ([step(1), step(1, name="Again")], "same position"),
        ([step(1, DELETE="on")], "at least one step"),
    ],
)
def test_invalid_steps_are_form_errors(manager, processes, steps, error):
    process = ProcessDefinition.objects.get(slug="close-evidence")
    # Both existing steps are deleted, so that only the rows under test count.
    existing = [{**step(p), "DELETE": "on"} for p in (1, 2)]
    before = state()
    response = manager.post(reverse("process-edit", args=[process.pk]), process_data(process, steps=existing + steps))
    assert response.status_code == 200
    formset = response.context["steps"]
    messages = [*formset.non_form_errors(), *(e for f in formset.errors for es in f.values() for e in es)]
    assert any(error in m for m in messages), messages
    assert state() == before


@pytest.mark.django_db
def test_create_a_process(manager, processes):
    data = process_data(
        steps=[
            step(1, name="Invoice overdue", kind_pattern="invoice.overdue", allowance="1d"),
            step(2, name="Dunning sent", kind_pattern="dunning.sent", allowance="3d", required=""),
            {"position": "", "name": "", "system": "", "kind_pattern": "", "allowance": "", "required": "on"},
        ]
    )
    response = manager.post(reverse("process-create"), data)
    assert response.status_code == 302
    process = ProcessDefinition.objects.get(slug="dunning")
    assert process.correlation_keys == ["invoice", "dunning_notice"]
    assert list(process.steps.values_list("name", "allowance", "required")) == [
        ("Invoice overdue", timedelta(days=1), True),
        ("Dunning sent", timedelta(days=3), False),
    ]
    entry = last_audit("process.created")
    assert entry.after["slug"] == "dunning" and len(entry.after["steps"]) == 2
    assert "dunning_notice" in correlating_key_types()

    before = state()
    again = manager.post(reverse("process-create"), data)
    assert again.status_code == 200 and again.context["form"].errors["slug"]
    assert state() == before


def test_durations_parse_and_print():
    assert duration_parse("4h") == timedelta(hours=4)
    assert duration_parse(" 1d 4H ") == timedelta(hours=28)
    assert duration_parse("90m") == timedelta(minutes=90)
    assert duration_parse("1w") == timedelta(days=7)
    assert duration_label(timedelta(hours=28)) == "1d 4h"
    assert duration_label(timedelta(minutes=90)) == "1h 30m"
    assert duration_label(timedelta(days=30)) == "30d"
    for bad in ("", "4", "h", "4x", "-1h", "1.5h", "0m"):
        with pytest.raises(DomainError):
            duration_parse(bad)
