from datetime import UTC, datetime

import pytest
from django.db import transaction

from console.lib.models import merged_chain_end, merged_chain_end_id
from transactions.models import Transaction

T0 = datetime(2026, 5, 18, 10, 0, tzinfo=UTC)


def _txns(n: int) -> list[Transaction]:
    return [Transaction.objects.create(started_at=T0, last_event_at=T0) for _ in range(n)]


def _merge(absorbed: Transaction, survivor: Transaction) -> None:
    absorbed.merged_into = survivor
    absorbed.save(update_fields=["merged_into"])


@pytest.mark.django_db
def test_the_chain_is_followed_to_the_survivor():
    a, b, c = _txns(3)
    _merge(a, b)
    _merge(b, c)
    assert merged_chain_end(a) == c and merged_chain_end(c) == c
    assert merged_chain_end_id(Transaction.objects.all(), a.pk) == c.pk
    assert merged_chain_end_id(Transaction.objects.all(), c.pk) == c.pk


@pytest.mark.django_db
def test_a_chain_that_loops_back_stops_instead_of_spinning():
    a, b = _txns(2)
    _merge(a, b)
    _merge(b, a)
    assert merged_chain_end(a) == b
    assert merged_chain_end_id(Transaction.objects.all(), a.pk) == b.pk


@pytest.mark.django_db
def test_each_hop_is_read_through_the_given_queryset():
    a, b = _txns(2)
    _merge(a, b)
    with transaction.atomic():
        assert merged_chain_end(a, queryset=Transaction.objects.select_for_update()) == b
    assert merged_chain_end(a, queryset=Transaction.objects.select_related("process")) == b
    with pytest.raises(Transaction.DoesNotExist):
        merged_chain_end(a, queryset=Transaction.objects.exclude(pk=b.pk))
    with pytest.raises(Transaction.DoesNotExist):
        merged_chain_end_id(Transaction.objects.all(), 10**9)
