"""Console pages of the transactions app: ingest (sources, tokens, rules, dead letters, feed health), transactions.

Plain function views: they read through selectors, write through services (which audit in the same transaction),
and turn a service's DomainError into a message or a form error, never a 500.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for, audit_history, audit_record
from console.lib.capabilities import MANAGE_INGEST, REPLAY_DEAD_LETTERS, VIEW_TRANSACTIONS
from console.lib.errors import DomainError, StaleVersion
from console.lib.exports import csv_response
from console.lib.panels import render_panels
from console.lib.saved_views import saved_view_list
from console.lib.views import confirm, get_or_404, posted
from transactions import charts, selectors, services
from transactions.choices import DeadLetterStatus
from transactions.filters import TransactionFilterSet
from transactions.forms import (
    DeadLetterActionForm,
    DeadLetterFilterForm,
    DeadLetterRepairForm,
    ExtractionRuleForm,
    ExtractionRuleTestForm,
    IngestSourceForm,
    IngestTokenForm,
    RedactionRuleForm,
    SourceAliasForm,
)
from transactions.models import DeadLetter, ExtractionRule, IngestSource, Transaction

DEAD_LETTER_PAGE_SIZE = 50


# ---- Ingest sources, tokens, aliases --------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def ingest_source_list(request: HttpRequest) -> HttpResponse:
    form = IngestSourceForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            source = services.ingest_source_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=actor_for(request.user),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Ingest source {source.name} created. Create a token for it below.")
            return redirect("ingest-source-detail", source_id=source.pk)
    return render(
        request, "transactions/ingest_source_list.html", {"sources": selectors.ingest_source_list(), "form": form}
    )


def _source_detail(request: HttpRequest, source: IngestSource, **extra: Any) -> HttpResponse:
    context = {
        "source": source,
        "tokens": selectors.ingest_token_list(source=source),
        "aliases": selectors.source_alias_list(source=source),
        "token_form": IngestTokenForm(),
        "alias_form": SourceAliasForm(),
        "ingest_url": request.build_absolute_uri(reverse("api-events-ingest")),
        **extra,
    }
    return render(request, "transactions/ingest_source_detail.html", context)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
def ingest_source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_or_404(selectors.ingest_source_get, source_id=source_id)
    return _source_detail(request, source)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_POST
def ingest_token_create(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_or_404(selectors.ingest_source_get, source_id=source_id)
    form = IngestTokenForm(request.POST)
    if not form.is_valid():
        return _source_detail(request, source, token_form=form)
    token, clear = services.ingest_token_create(
        source=source, label=form.cleaned_data["label"], actor=actor_for(request.user)
    )
    # The clear token lives only in this response: never in the session, a message or a redirect target.
    response = _source_detail(request, source, new_token=clear, new_token_row=token)
    add_never_cache_headers(response)
    return response


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def ingest_token_revoke(request: HttpRequest, source_id: int, token_id: int) -> HttpResponse:
    source = get_or_404(selectors.ingest_source_get, source_id=source_id)
    token = selectors.ingest_token_list(source=source).filter(pk=token_id).first()
    if token is None:
        raise Http404("no such token")
    back = reverse("ingest-source-detail", args=[source.pk])
    if request.method == "GET":
        if token.revoked_at is not None:
            messages.info(request, f"Token {token.prefix}… is revoked already.")
            return redirect(back)
        return confirm(
            request,
            title=f"Revoke token {token.prefix}…",
            message=(
                f"Senders using token {token.prefix}… ({token.label or 'no label'}) of {source.name} will get 401 "
                "from their next request on. This cannot be undone; create a new token to replace it."
            ),
            action=request.path,
            cancel=back,
            button="Revoke token",
        )
    services.ingest_token_revoke(token=token, actor=actor_for(request.user))
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect(back)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_POST
def source_alias_create(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_or_404(selectors.ingest_source_get, source_id=source_id)
    form = SourceAliasForm(request.POST)
    if form.is_valid():
        try:
            alias = services.source_alias_create(
                source=source,
                pattern=form.cleaned_data["pattern"],
                system=form.cleaned_data["system"],
                actor=actor_for(request.user),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Alias {alias} added.")
            return redirect("ingest-source-detail", source_id=source.pk)
    return _source_detail(request, source, alias_form=form)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def source_alias_delete(request: HttpRequest, source_id: int, alias_id: int) -> HttpResponse:
    source = get_or_404(selectors.ingest_source_get, source_id=source_id)
    alias = selectors.source_alias_list(source=source).filter(pk=alias_id).first()
    if alias is None:
        raise Http404("no such alias")
    back = reverse("ingest-source-detail", args=[source.pk])
    if request.method == "GET":
        return confirm(
            request,
            title="Delete alias",
            message=f"CloudEvents from {alias.pattern} will no longer be named {alias.system}; "
            "their source URI becomes their system.",
            action=request.path,
            cancel=back,
            button="Delete alias",
        )
    services.source_alias_delete(alias=alias, actor=actor_for(request.user))
    messages.success(request, f"Alias {alias} deleted.")
    return redirect(back)


# ---- Extraction rules -----------------------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
def extraction_rule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "transactions/extraction_rule_list.html", {"rules": selectors.extraction_rule_list()})


def _extraction_rule_form_page(
    request: HttpRequest, form: ExtractionRuleForm, rule: ExtractionRule | None
) -> HttpResponse:
    test_form = ExtractionRuleTestForm(
        initial={"sample": json.dumps({"kind": rule.kind_pattern if rule else "", "data": {}}, indent=2)}
    )
    return render(
        request, "transactions/extraction_rule_form.html", {"form": form, "rule": rule, "test_form": test_form}
    )


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def extraction_rule_create(request: HttpRequest) -> HttpResponse:
    form = ExtractionRuleForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.extraction_rule_create(actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Extraction rule {rule} created.")
            return redirect("extraction-rule-list")
    return _extraction_rule_form_page(request, form, None)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def extraction_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.extraction_rule_list().get, pk=rule_id)
    form = ExtractionRuleForm(posted(request), instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.extraction_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Extraction rule {rule} saved.")
            return redirect("extraction-rule-list")
    return _extraction_rule_form_page(request, form, rule)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_POST
def extraction_rule_activate(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.extraction_rule_list().get, pk=rule_id)
    active = request.POST.get("is_active") == "1"
    try:
        rule = services.extraction_rule_set_active(rule=rule, is_active=active, actor=actor_for(request.user))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Extraction rule {rule} {'activated' if active else 'deactivated'}.")
    return redirect("extraction-rule-list")


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def extraction_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.extraction_rule_list().get, pk=rule_id)
    if request.method == "GET":
        return confirm(
            request,
            title="Delete extraction rule",
            message=f"Rule #{rule.pk} ({rule}) will no longer apply to records received from now on; "
            "events stored before keep their keys.",
            action=request.path,
            cancel=reverse("extraction-rule-list"),
            button="Delete rule",
        )
    services.extraction_rule_delete(rule=rule, actor=actor_for(request.user))
    messages.success(request, f"Extraction rule {rule} deleted.")
    return redirect("extraction-rule-list")


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_POST
def extraction_rule_test(request: HttpRequest) -> HttpResponse:
    """Try the rule as typed (saved or not) on a sample record; htmx swaps the result into the edit page."""
    form = ExtractionRuleTestForm(request.POST)
    context = {"test_form": form, "result": form.result() if form.is_valid() else None}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "transactions/_extraction_rule_test_result.html", context)
    return render(request, "transactions/extraction_rule_test.html", context)


# ---- Redaction rules ------------------------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
def redaction_rule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "transactions/redaction_rule_list.html", {"rules": selectors.redaction_rule_list()})


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def redaction_rule_create(request: HttpRequest) -> HttpResponse:
    form = RedactionRuleForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.redaction_rule_create(actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Redaction rule {rule} created.")
            return redirect("redaction-rule-list")
    return render(request, "transactions/redaction_rule_form.html", {"form": form, "rule": None})


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def redaction_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.redaction_rule_list().get, pk=rule_id)
    form = RedactionRuleForm(posted(request), instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            rule = services.redaction_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Redaction rule {rule} saved.")
            return redirect("redaction-rule-list")
    return render(request, "transactions/redaction_rule_form.html", {"form": form, "rule": rule})


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def redaction_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.redaction_rule_list().get, pk=rule_id)
    if request.method == "GET":
        return confirm(
            request,
            title="Delete redaction rule",
            message=f"Attributes matching {rule.pattern} will be stored as received from now on "
            "(unless another rule matches them).",
            action=request.path,
            cancel=reverse("redaction-rule-list"),
            button="Delete rule",
        )
    services.redaction_rule_delete(rule=rule, actor=actor_for(request.user))
    messages.success(request, f"Redaction rule {rule} deleted.")
    return redirect("redaction-rule-list")


# ---- Dead letters ---------------------------------------------------------------------------------------------------


@login_required
@permission_required(REPLAY_DEAD_LETTERS, raise_exception=True)
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    form = DeadLetterFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {"status": DeadLetterStatus.PENDING}
    before = request.GET.get("before", "")
    letters = selectors.dead_letter_list(
        status=filters.get("status") or "",
        source=filters.get("source"),
        channel=filters.get("channel") or "",
        reason=(filters.get("reason") or "").strip(),
        before=int(before) if before.isdigit() else None,
    )
    page = list(letters[: DEAD_LETTER_PAGE_SIZE + 1])
    older = page[DEAD_LETTER_PAGE_SIZE - 1].pk if len(page) > DEAD_LETTER_PAGE_SIZE else None
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "transactions/dead_letter_list.html",
        {
            "form": form,
            "letters": page[:DEAD_LETTER_PAGE_SIZE],
            "older": older,
            "query": query.urlencode(),
            "first_page": not before,
        },
    )


def _dead_letter_detail(
    request: HttpRequest, letter: DeadLetter, *, repair_form: DeadLetterRepairForm | None = None, status: int = 200
) -> HttpResponse:
    raw_pretty = json.dumps(letter.raw, indent=2, ensure_ascii=False) if letter.raw is not None else ""
    context = {
        "letter": letter,
        "raw_pretty": raw_pretty,
        # Two forms on the page carry it: no id, so that ids stay unique.
        "action_form": DeadLetterActionForm(initial={"version": letter.version}, auto_id=False),
        "repair_form": repair_form or DeadLetterRepairForm(initial={"version": letter.version, "raw": raw_pretty}),
        "history": audit_history(obj=letter),
        "is_pending": letter.status == DeadLetterStatus.PENDING,
    }
    return render(request, "transactions/dead_letter_detail.html", context, status=status)


@login_required
@permission_required(REPLAY_DEAD_LETTERS, raise_exception=True)
def dead_letter_detail(request: HttpRequest, dead_letter_id: int) -> HttpResponse:
    letter = get_or_404(selectors.dead_letter_get, dead_letter_id=dead_letter_id)
    return _dead_letter_detail(request, letter)


def _replay_message(request: HttpRequest, letter_id: int) -> None:
    letter = selectors.dead_letter_get(dead_letter_id=letter_id)
    if letter.status == DeadLetterStatus.REPLAYED:
        messages.success(request, f"Replayed: {letter.last_replay_outcome}.")
    else:
        messages.warning(
            request,
            f"Replay {letter.last_replay_outcome}. This dead letter stays pending; "
            "the failed attempt was also kept as a new dead letter.",
        )


@login_required
@permission_required(REPLAY_DEAD_LETTERS, raise_exception=True)
@require_POST
def dead_letter_replay(request: HttpRequest, dead_letter_id: int) -> HttpResponse:
    letter = get_or_404(selectors.dead_letter_get, dead_letter_id=dead_letter_id)
    form = DeadLetterActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The page was missing the dead letter's version; reload it and try again.")
    else:
        try:
            services.dead_letter_replay(
                dead_letter=letter, actor=actor_for(request.user), expected_version=form.cleaned_data["version"]
            )
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            _replay_message(request, letter.pk)
    return redirect("dead-letter-detail", dead_letter_id=letter.pk)


@login_required
@permission_required(REPLAY_DEAD_LETTERS, raise_exception=True)
@require_POST
def dead_letter_repair(request: HttpRequest, dead_letter_id: int) -> HttpResponse:
    """Replay an edited copy of the record; on any problem the page comes back with the user's text kept."""
    letter = get_or_404(selectors.dead_letter_get, dead_letter_id=dead_letter_id)
    form = DeadLetterRepairForm(request.POST)
    if not form.is_valid():
        return _dead_letter_detail(request, letter, repair_form=form)
    try:
        services.dead_letter_replay(
            dead_letter=letter,
            actor=actor_for(request.user),
            expected_version=form.cleaned_data["version"],
            raw=form.cleaned_data["raw"],
        )
    except StaleVersion as exc:
        messages.error(request, str(exc))
        letter = selectors.dead_letter_get(dead_letter_id=letter.pk)
        # The page now shows the current state; the user's edit is kept, based on the version they can now see.
        fresh = DeadLetterRepairForm(initial={"version": letter.version, "raw": request.POST.get("raw", "")})
        return _dead_letter_detail(request, letter, repair_form=fresh, status=409)
    except DomainError as exc:
        messages.error(request, str(exc))
        return _dead_letter_detail(request, letter, repair_form=form, status=exc.status_code)
    _replay_message(request, letter.pk)
    return redirect("dead-letter-detail", dead_letter_id=letter.pk)


@login_required
@permission_required(REPLAY_DEAD_LETTERS, raise_exception=True)
@require_POST
def dead_letter_discard(request: HttpRequest, dead_letter_id: int) -> HttpResponse:
    letter = get_or_404(selectors.dead_letter_get, dead_letter_id=dead_letter_id)
    form = DeadLetterActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The page was missing the dead letter's version; reload it and try again.")
    else:
        try:
            services.dead_letter_discard(
                dead_letter=letter, actor=actor_for(request.user), expected_version=form.cleaned_data["version"]
            )
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Dead letter {letter.pk} discarded.")
    return redirect("dead-letter-detail", dead_letter_id=letter.pk)


# ---- Feed health ----------------------------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
def feed_health(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = selectors.feed_health_list(now=now)
    activity = selectors.feed_activity_list(now=now)
    source_charts = [
        (row.source, charts.feed_chart(activity[row.source.pk]) if row.source.pk in activity else "") for row in rows
    ]
    return render(request, "transactions/feed_health.html", {"rows": rows, "charts": source_charts, "now": now})


# ---- Transactions ---------------------------------------------------------------------------------------------------

TRANSACTION_PAGE = 50
CSV_LIMIT = 100_000
CSV_HEADER = ["id", "process", "status", "started_at", "last_event_at", "events", "errors", "systems", "business_keys"]


def _after_cursor(queryset: QuerySet, cursor: str) -> QuerySet:
    """Keyset pagination on (last_event_at, id) descending: the page after the row the cursor names."""
    stamp, _, txn_id = cursor.rpartition("_")
    try:
        moment = datetime.fromisoformat(stamp)
        last_id = int(txn_id)
    except ValueError:
        return queryset
    return queryset.filter(Q(last_event_at__lt=moment) | Q(last_event_at=moment, id__lt=last_id))


def _csv_rows(queryset: QuerySet) -> Iterator[list]:
    for txn in queryset[:CSV_LIMIT].iterator(chunk_size=2000):
        keys = "; ".join(f"{t}={','.join(v)}" for t, v in sorted(txn.business_keys.items()))
        yield [
            txn.pk,
            txn.process.name if txn.process else "",
            txn.status,
            txn.started_at.isoformat(),
            txn.last_event_at.isoformat(),
            txn.event_count,
            txn.error_count,
            " ".join(txn.systems),
            keys,
        ]


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def transaction_list(request: HttpRequest) -> HttpResponse:
    filterset = TransactionFilterSet(request.GET, queryset=selectors.transaction_list())
    transactions = filterset.qs if filterset.is_valid() else selectors.transaction_list().none()
    if request.GET.get("format") == "csv":
        audit_record(
            actor=actor_for(request.user),
            action="transactions.exported",
            object_type="transactions.transaction",
            after={"filters": {k: v for k, v in request.GET.items() if k != "format"}},
        )
        return csv_response("transactions.csv", CSV_HEADER, _csv_rows(transactions))
    if request.GET.get("cursor"):
        transactions = _after_cursor(transactions, request.GET["cursor"])
    page = list(transactions[: TRANSACTION_PAGE + 1])
    next_cursor = None
    if len(page) > TRANSACTION_PAGE:
        last = page[TRANSACTION_PAGE - 1]
        next_cursor = f"{last.last_event_at.isoformat()}_{last.pk}"
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("format", None)
    return render(
        request,
        "transactions/transaction_list.html",
        {
            "filter": filterset,
            "transactions": page[:TRANSACTION_PAGE],
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "saved_views": saved_view_list(user=request.user, page="transactions"),
            "saved_view_page": "transactions",
        },
    )


def _matches(item: dict, needle: str) -> bool:
    haystack = " ".join(
        str(item.get(field) or "") for field in ("id", "event_id", "span_id", "trace_id", "system", "kind")
    )
    haystack += " " + json.dumps(item.get("attributes") or {}, default=str) + json.dumps(item.get("error") or {})
    return needle in haystack.lower()


@login_required
@permission_required(VIEW_TRANSACTIONS, raise_exception=True)
def transaction_detail(request: HttpRequest, txn_id: int) -> HttpResponse:
    try:
        txn = selectors.transaction_resolve(txn_id=txn_id)
    except Transaction.DoesNotExist as exc:
        raise Http404("no such transaction") from exc
    if txn.pk != txn_id:
        return HttpResponsePermanentRedirect(reverse("transaction-detail", args=[txn.pk]))
    timeline = selectors.transaction_timeline(txn=txn)
    needle = request.GET.get("q", "").strip().lower()
    shown = [i for i in timeline["items"] if _matches(i, needle)] if needle else timeline["items"]
    return render(
        request,
        "transactions/transaction_detail.html",
        {
            "txn": txn,
            "timeline": timeline,
            "items": shown,
            "q": request.GET.get("q", ""),
            "chart": charts.timeline_chart(timeline),
            "duration": charts.duration_label(timeline["end_to_end_ms"]),
            "panels": render_panels("transaction_detail", request=request, txn=txn),
        },
    )
