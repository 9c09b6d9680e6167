"""SLA pressure in the simulated estate: one system goes silent before the end, some control evidence never comes."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from transactions.simulation.estate import EVIDENCE_KINDS, Scenario, generate

END = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # a Wednesday morning


def scenario(**kw) -> Scenario:
    return Scenario(seed=5, start=END - timedelta(days=6), end=END, rate_per_hour=4, failure_rate=0.2, **kw)


def test_silence_is_the_last_working_hours_and_holds_back_only_that_system():
    plain = scenario()
    quiet = scenario(silent_system="stripe-payments", silence=timedelta(hours=4))
    # 3.5 h on Wednesday from 06:00 UTC, and the last half hour of Tuesday's working day (until 18:00 UTC).
    assert quiet.silence_start == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    before = [e for t in generate(plain) for e in t.events]
    after_txns = list(generate(quiet))
    after = [e for t in after_txns for e in t.events]
    held = [e for e in before if e.system == "stripe-payments" and e.deliver_at >= quiet.silence_start]
    assert held and len(after) == len(before) - len(held)
    assert not [e for e in after if e.system == "stripe-payments" and e.deliver_at >= quiet.silence_start]
    # A transaction whose every delivery was held back never reaches Closeloop, so it is not counted at all.
    assert 0 < sum(t.withheld for t in after_txns) <= len(held)
    # Every other system still delivers in the silence.
    assert any(e.deliver_at >= quiet.silence_start for e in after)


def test_evidence_loss_drops_the_evidence_of_some_transactions_and_nothing_else():
    plain = list(generate(scenario()))
    lossy = list(generate(scenario(evidence_loss=0.5)))
    assert [t.number for t in plain] == [t.number for t in lossy]  # the estate is otherwise the same
    lost = [t for t in lossy if t.evidence_lost]
    with_evidence = [t for t in plain if any(e.record["kind"] in EVIDENCE_KINDS for e in t.events)]
    assert 0.3 * len(with_evidence) < len(lost) < 0.7 * len(with_evidence)
    for before, after in zip(plain, lossy, strict=True):
        kept = [e for e in before.events if not (after.evidence_lost and e.record["kind"] in EVIDENCE_KINDS)]
        assert [e.record for e in after.events] == [e.record for e in kept]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--silence", "nobody=2"], "--silence takes SYSTEM=HOURS"),
        (["--silence", "stripe-payments=soon"], "HOURS must be a number"),
        (["--evidence-loss", "2"], "--evidence-loss must be between 0 and 1"),
    ],
)
def test_bad_pressure_arguments_are_readable_errors(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args, stdout=io.StringIO(), stderr=io.StringIO())
