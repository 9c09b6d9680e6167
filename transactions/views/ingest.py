"""Console pages of the ingest side, for the integration role: sources, tokens, aliases, extraction and redaction rules,
dead letters and feed health.
"""

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for, audit_history
from console.lib.capabilities import MANAGE_INGEST, REPLAY_DEAD_LETTERS
from console.lib.errors import DomainError, StaleVersion
from console.lib.views import confirm, get_or_404, posted
from transactions import charts, selectors, services
from transactions.choices import DeadLetterStatus
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
from transactions.models import DeadLetter, ExtractionRule, IngestSource
from transactions.views import form_write

DEAD_LETTER_PAGE_SIZE = 50


def _delete_page(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    button: str,
    back: str,
    delete: Callable[[], None],
    done: str,
) -> HttpResponse:
    """GET asks to confirm (saying what the deletion changes); POST runs `delete`, says `done` and goes `back`."""
    if request.method == "GET":
        return confirm(request, title=title, message=message, action=request.path, cancel=back, button=button)
    delete()
    messages.success(request, done)
    return redirect(back)


# ---- Ingest sources, tokens, aliases --------------------------------------------------------------------------------


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def ingest_source_list(request: HttpRequest) -> HttpResponse:
    form = IngestSourceForm(posted(request))
    source = form_write(
        request,
        form,
        lambda: services.ingest_source_create(
            name=form.cleaned_data["name"], description=form.cleaned_data["description"], actor=actor_for(request.user)
        ),
        message=lambda source: f"Ingest source {source.name} created. Create a token for it below.",
    )
    if source is not None:
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
    alias = form_write(
        request,
        form,
        lambda: services.source_alias_create(
            source=source,
            pattern=form.cleaned_data["pattern"],
            system=form.cleaned_data["system"],
            actor=actor_for(request.user),
        ),
        message=lambda alias: f"Alias {alias} added.",
    )
    if alias is not None:
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
    return _delete_page(
        request,
        title="Delete alias",
        message=f"CloudEvents from {alias.pattern} will no longer be named {alias.system}; "
        "their source URI becomes their system.",
        button="Delete alias",
        back=reverse("ingest-source-detail", args=[source.pk]),
        delete=lambda: services.source_alias_delete(alias=alias, actor=actor_for(request.user)),
        done=f"Alias {alias} deleted.",
    )


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
    created = form_write(
        request,
        form,
        lambda: services.extraction_rule_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Extraction rule {rule} created.",
    )
    if created is not None:
        return redirect("extraction-rule-list")
    return _extraction_rule_form_page(request, form, None)


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def extraction_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.extraction_rule_list().get, pk=rule_id)
    form = ExtractionRuleForm(posted(request), instance=rule)
    saved = form_write(
        request,
        form,
        lambda: services.extraction_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Extraction rule {rule} saved.",
    )
    if saved is not None:
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
    return _delete_page(
        request,
        title="Delete extraction rule",
        message=f"Rule #{rule.pk} ({rule}) will no longer apply to records received from now on; "
        "events stored before keep their keys.",
        button="Delete rule",
        back=reverse("extraction-rule-list"),
        delete=lambda: services.extraction_rule_delete(rule=rule, actor=actor_for(request.user)),
        done=f"Extraction rule {rule} deleted.",
    )


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
    created = form_write(
        request,
        form,
        lambda: services.redaction_rule_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Redaction rule {rule} created.",
    )
    if created is not None:
        return redirect("redaction-rule-list")
    return render(request, "transactions/redaction_rule_form.html", {"form": form, "rule": None})


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def redaction_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.redaction_rule_list().get, pk=rule_id)
    form = RedactionRuleForm(posted(request), instance=rule)
    saved = form_write(
        request,
        form,
        lambda: services.redaction_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Redaction rule {rule} saved.",
    )
    if saved is not None:
        return redirect("redaction-rule-list")
    return render(request, "transactions/redaction_rule_form.html", {"form": form, "rule": rule})


@login_required
@permission_required(MANAGE_INGEST, raise_exception=True)
@require_http_methods(["GET", "POST"])
def redaction_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.redaction_rule_list().get, pk=rule_id)
    return _delete_page(
        request,
        title="Delete redaction rule",
        message=f"Attributes matching {rule.pattern} will be stored as received from now on "
        "(unless another rule matches them).",
        button="Delete rule",
        back=reverse("redaction-rule-list"),
        delete=lambda: services.redaction_rule_delete(rule=rule, actor=actor_for(request.user)),
        done=f"Redaction rule {rule} deleted.",
    )


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
