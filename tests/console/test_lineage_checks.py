"""The lineage's own checks on plain data (console.lineage): order and every finding kind."""

from datetime import UTC, datetime, timedelta

from console.lineage import (
    APPROVAL_AFTER_STEP,
    APPROVER_NOT_ALLOWED,
    MISSING_APPROVAL,
    SOD_MAKER_CHECKER,
    SOD_PAIR,
    EventFact,
    LineageRow,
    SodPair,
    StepControl,
    lineage_build,
)

T = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)
P = 1
STEPS = [
    StepControl(
        P,
        1,
        "Contract approved",
        "contract.approved",
        requires_approval=True,
        approval_step="deal-desk",
        allowed_approvers=("manager",),
        opens_case=True,
    ),
    StepControl(P, 2, "Sales order created", "order.created"),
    StepControl(P, 3, "Invoice posted", "invoice.posted", requires_approval=True, approval_step="billing-review"),
    StepControl(P, 4, "Payment received", "payment.received"),
]


def ev(event_id, kind, minutes, *, approval=None, txn=10, **attributes):
    return EventFact(event_id, txn, T + timedelta(minutes=minutes), "crm", kind, "ok", approval, attributes)


def approve(actor, step, decision="approved"):
    return {"actor": actor, "decision": decision, "step": step}


def build(events, *, pairs=(), roles=None, other=()):
    return lineage_build(
        events=events,
        other_rows=list(other),
        steps=STEPS,
        pairs=list(pairs),
        roles=roles or {},
        process_of={10: P, 11: P},
    )


def codes(lineage):
    return sorted(f.code for f in lineage.findings)


ROLES = {"mia": frozenset({"manager"}), "ben": frozenset({"finance_ops"})}


def test_a_clean_transaction_has_no_findings_and_rows_in_time_order():
    events = [
        ev(3, "order.created", 10),
        ev(1, "contract.approved", 0, approval=approve("mia", "deal-desk")),
        ev(4, "invoice.posted", 20),
        ev(2, "billing.reviewed", 15, approval=approve("ben", "billing-review")),
    ]
    lineage = build(events, roles=ROLES)
    assert lineage.findings == []
    assert [r.ref for r in lineage.rows] == ["event:1", "event:3", "event:2", "event:4"]
    assert [r.kind for r in lineage.rows] == ["approval", "event", "approval", "event"]
    assert lineage.rows[0].actor == "mia" and lineage.rows[0].step == "deal-desk"


def test_two_approvals_at_the_same_second_keep_arrival_order_and_other_rows_follow_their_event():
    events = [
        ev(8, "contract.approved", 0, approval=approve("ben", "legal")),
        ev(7, "contract.approved", 0, approval=approve("mia", "deal-desk")),
    ]
    audit = LineageRow(T, "audit", 10, "user:mia", "case.assign", "audit:1")
    case = LineageRow(T, "case", 10, "system:routing", "case", "case:5")
    lineage = build(events, roles=ROLES, other=[audit, case])
    assert [r.ref for r in lineage.rows] == ["event:7", "event:8", "case:5", "audit:1"]


def test_missing_approval_before_the_dependent_step():
    lineage = build([ev(1, "contract.approved", 0), ev(2, "order.created", 10)], roles=ROLES)
    assert codes(lineage) == [MISSING_APPROVAL]
    finding = lineage.findings[0]
    assert finding.refs == ("event:1",) and finding.opens_case
    row = next(r for r in lineage.rows if r.ref == "event:1")
    assert row.findings == (MISSING_APPROVAL,)


def test_a_rejection_is_no_approval_and_no_dependent_step_means_no_finding_yet():
    rejected = [
        ev(1, "contract.approved", 0, approval=approve("mia", "deal-desk", "rejected")),
        ev(2, "order.created", 5),
    ]
    assert codes(build(rejected, roles=ROLES)) == [MISSING_APPROVAL]
    assert codes(build([ev(1, "quote.created", 0)], roles=ROLES)) == []


def test_an_approval_timestamped_after_the_posting_it_should_precede():
    events = [
        ev(1, "contract.approved", 0, approval=approve("mia", "deal-desk")),
        ev(2, "order.created", 10),
        ev(3, "invoice.posted", 20),
        ev(4, "billing.reviewed", 25, approval=approve("ben", "billing-review")),
    ]
    lineage = build(events, roles=ROLES)
    assert codes(lineage) == [APPROVAL_AFTER_STEP]
    assert lineage.findings[0].refs == ("event:4", "event:3")


def test_an_approver_whose_roles_do_not_allow_it_and_one_with_two_roles():
    events = [ev(1, "contract.approved", 0, approval=approve("ben", "deal-desk")), ev(2, "order.created", 5)]
    lineage = build(events, roles=ROLES)
    assert codes(lineage) == [APPROVER_NOT_ALLOWED]
    assert "ben (finance_ops)" in lineage.findings[0].detail
    two_roles = {"ben": frozenset({"finance_ops", "manager"})}
    assert codes(build(events, roles=two_roles)) == []
    # Unknown to Closeloop (no user of that name): no role, so not allowed.
    assert codes(build(events, roles={})) == [APPROVER_NOT_ALLOWED]


def test_the_maker_approving_their_own_object():
    events = [
        ev(1, "contract.changed", 0, changed_by="Mia"),
        ev(2, "contract.approved", 5, approval=approve("mia", "deal-desk")),
        ev(3, "order.created", 10),
    ]
    lineage = build(events, roles=ROLES)
    assert codes(lineage) == [SOD_MAKER_CHECKER]
    assert lineage.findings[0].refs == ("event:1", "event:2")
    assert lineage.findings[0].opens_case  # the deal-desk step's setting


def test_one_person_approving_two_steps_that_must_differ():
    events = [
        ev(1, "contract.approved", 0, approval=approve("mia", "deal-desk")),
        ev(2, "order.created", 10),
        ev(3, "billing.reviewed", 15, approval=approve("MIA", "billing-review")),
        ev(4, "invoice.posted", 20),
    ]
    pair = SodPair(9, "deal-desk", "billing-review", process_id=P, opens_case=False)
    lineage = build(events, pairs=[pair], roles=ROLES)
    assert codes(lineage) == [SOD_PAIR]
    assert lineage.findings[0].subject == "sod:9" and not lineage.findings[0].opens_case
    other_process = SodPair(9, "deal-desk", "billing-review", process_id=P + 1)
    assert codes(build(events, pairs=[other_process], roles=ROLES)) == []


def test_findings_are_per_transaction_and_their_signal_keys_differ():
    events = [
        ev(1, "contract.approved", 0, txn=10),
        ev(2, "order.created", 5, txn=10),
        ev(3, "contract.approved", 0, txn=11),
        ev(4, "order.created", 5, txn=11),
    ]
    lineage = build(events, roles=ROLES)
    assert [f.txn_id for f in lineage.findings] == [10, 11]
    assert lineage.findings[0].signal_key != lineage.findings[1].signal_key
    assert lineage.findings[0].subject == lineage.findings[1].subject  # one control case groups the repeats
