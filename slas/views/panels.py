"""Panels this app registers on lower apps' pages (console.lib.panels): a transaction's clocks, a queue's at-risk
clocks, each with the business time left."""

from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string

from console.lib.capabilities import VIEW_CASES, VIEW_TRANSACTIONS
from slas import selectors


def transaction_clocks_panel(*, request: HttpRequest, txn: Any, **context: Any) -> str | None:
    """The SLA clocks of this transaction, or nothing when it has none."""
    if not request.user.has_perm(VIEW_TRANSACTIONS):
        return None
    clocks = selectors.sla_clocks_for_transaction(txn_id=txn.pk)
    if not clocks:
        return None
    return render_to_string("slas/_transaction_clocks_panel.html", {"clocks": clocks}, request=request)


def queue_at_risk_panel(*, request: HttpRequest, queue: Any, **context: Any) -> str | None:
    """Clocks at risk whose breach would land in this queue, soonest deadline first, or nothing."""
    if not request.user.has_perm(VIEW_CASES):
        return None
    clocks = selectors.sla_clocks_at_risk_for_queue(queue_id=queue.pk)
    if not clocks:
        return None
    return render_to_string("slas/_queue_at_risk_panel.html", {"clocks": clocks, "queue": queue}, request=request)
