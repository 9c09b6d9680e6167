"""Replay targets and outbound webhooks: list, create, edit, dry run, disable, and each one's delivery log.

For integration engineers (`console.manage_ingest`) and managers (`console.edit_rules`). Writes go through the
audited services (services/targets.py); a stale version or a refused value becomes a form error. Secrets are
write-only: the pages say where one comes from ("encrypted", "env:NAME"), never what it is.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for
from console.lib.errors import DomainError
from console.lib.views import active_write, form_write, get_or_404, posted
from exceptions import selectors, services
from exceptions.forms.outbound import DryRunForm, ReplayTargetForm, WebhookForm
from exceptions.outbound import secret_label
from exceptions.permissions import can_configure_outbound


def outbound_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 unless the user configures integrations or manages rules."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_configure_outbound(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _labelled(objects: list[Any], *fields: str) -> list[Any]:
    for obj in objects:
        obj.secret_labels = {f: secret_label(getattr(obj, f)) for f in fields}
    return objects


# ---- Replay targets -------------------------------------------------------------------------------------------------


@outbound_required
def replay_target_list(request: HttpRequest) -> HttpResponse:
    targets = _labelled(list(selectors.replay_target_list()), "auth_secret", "signing_secret")
    return render(request, "exceptions/outbound_target_list.html", {"targets": targets})


@outbound_required
@require_http_methods(["GET", "POST"])
def replay_target_create(request: HttpRequest) -> HttpResponse:
    form = ReplayTargetForm(posted(request))
    target = form_write(
        request,
        form,
        lambda: services.replay_target_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda t: f"Replay target for {t.system} created. Try a dry run before the first replay.",
    )
    if target is not None:
        return redirect("replay-target-dry-run", target_id=target.pk)
    return render(request, "exceptions/outbound_target_form.html", {"form": form, "target": None})


@outbound_required
@require_http_methods(["GET", "POST"])
def replay_target_edit(request: HttpRequest, target_id: int) -> HttpResponse:
    target = get_or_404(selectors.replay_target_get, target_id=target_id)
    form = ReplayTargetForm(posted(request), obj=target)
    saved = form_write(
        request,
        form,
        lambda: services.replay_target_update(
            target=target,
            actor=actor_for(request.user),
            expected_version=form.cleaned_data["version"],
            **form.service_kwargs(),
        ),
        message=lambda t: f"Replay target for {t.system} saved.",
    )
    if saved is not None:
        return redirect("replay-target-list")
    _labelled([target], "auth_secret", "signing_secret")
    return render(request, "exceptions/outbound_target_form.html", {"form": form, "target": target})


@outbound_required
@require_POST
def replay_target_activate(request: HttpRequest, target_id: int) -> HttpResponse:
    target = get_or_404(selectors.replay_target_get, target_id=target_id)
    return active_write(
        request,
        lambda active: services.replay_target_set_active(
            target=target, actor=actor_for(request.user), is_active=active
        ),
        noun="Replay target",
        back=reverse("replay-target-list"),
    )


@outbound_required
@require_http_methods(["GET", "POST"])
def replay_target_dry_run(request: HttpRequest, target_id: int) -> HttpResponse:
    """What a replay would send, without sending it: a POST previews a record typed in (it writes nothing)."""
    target = get_or_404(selectors.replay_target_get, target_id=target_id)
    form = DryRunForm(posted(request))
    payload = form.cleaned_data["payload"] if request.method == "POST" and form.is_valid() else None
    shown = None if form.errors else services.replay_target_dry_run(target=target, payload=payload)
    context = {
        "title": f"Dry run: replay to {target.system}",
        "back": reverse("replay-target-list"),
        "back_label": "Replay targets",
        "edit": reverse("replay-target-edit", args=[target.pk]),
        "request_shown": shown,
        "form": form,
    }
    return render(request, "exceptions/outbound_dry_run.html", context)


@outbound_required
def replay_target_log(request: HttpRequest, target_id: int) -> HttpResponse:
    target = get_or_404(selectors.replay_target_get, target_id=target_id)
    context = {"target": target, "replays": selectors.replay_target_log(target=target)}
    return render(request, "exceptions/outbound_target_log.html", {**context, "limit": selectors.DELIVERY_LOG_LIMIT})


# ---- Webhooks -------------------------------------------------------------------------------------------------------


@outbound_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = _labelled(list(selectors.webhook_list()), "signing_secret")
    return render(request, "exceptions/outbound_webhook_list.html", {"webhooks": webhooks})


@outbound_required
@require_http_methods(["GET", "POST"])
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(posted(request))
    webhook = form_write(
        request,
        form,
        lambda: services.webhook_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda w: f"Webhook {w.name} created.",
    )
    if webhook is not None:
        return redirect("webhook-dry-run", webhook_id=webhook.pk)
    return render(request, "exceptions/outbound_webhook_form.html", {"form": form, "webhook": None})


@outbound_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_or_404(selectors.webhook_get, webhook_id=webhook_id)
    form = WebhookForm(posted(request), obj=webhook)
    saved = form_write(
        request,
        form,
        lambda: services.webhook_update(
            webhook=webhook,
            actor=actor_for(request.user),
            expected_version=form.cleaned_data["version"],
            **form.service_kwargs(),
        ),
        message=lambda w: f"Webhook {w.name} saved.",
    )
    if saved is not None:
        return redirect("webhook-list")
    _labelled([webhook], "signing_secret")
    return render(request, "exceptions/outbound_webhook_form.html", {"form": form, "webhook": webhook})


@outbound_required
@require_POST
def webhook_activate(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_or_404(selectors.webhook_get, webhook_id=webhook_id)
    return active_write(
        request,
        lambda active: services.webhook_set_active(webhook=webhook, actor=actor_for(request.user), is_active=active),
        noun="Webhook",
        back=reverse("webhook-list"),
    )


@outbound_required
def webhook_dry_run(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_or_404(selectors.webhook_get, webhook_id=webhook_id)
    event = request.GET.get("event", "assigned")
    try:
        shown, error = services.webhook_dry_run(webhook=webhook, event=event), ""
    except DomainError as exc:
        shown, error = None, str(exc)
    context = {
        "title": f"Dry run: webhook {webhook.name}",
        "back": reverse("webhook-list"),
        "back_label": "Webhooks",
        "edit": reverse("webhook-edit", args=[webhook.pk]),
        "request_shown": shown,
        "events": services.WEBHOOK_EVENTS,
        "event": event,
        "error": error,
    }
    return render(request, "exceptions/outbound_dry_run.html", context, status=400 if error else 200)


@outbound_required
def webhook_log(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_or_404(selectors.webhook_get, webhook_id=webhook_id)
    context = {"webhook": webhook, "deliveries": selectors.webhook_log(webhook=webhook)}
    return render(request, "exceptions/outbound_webhook_log.html", {**context, "limit": selectors.DELIVERY_LOG_LIMIT})
