"""View plumbing shared by the console pages: a selector's miss as a 404, and the few ways a page hands a write to a
service (a form, a confirmation, an on/off switch), each turning the service's DomainError into what the user reads
instead of a 500."""

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from console.lib.errors import DomainError

T = TypeVar("T")


def get_or_404(read: Callable[..., T], **kwargs: Any) -> T:
    """Call a selector; a missing object becomes a 404 page."""
    try:
        return read(**kwargs)
    except ObjectDoesNotExist as exc:
        raise Http404(str(exc)) from exc


def posted(request: HttpRequest) -> Any:
    """The POST data to bind a form to, or None on GET (an empty POST still binds, so that it shows its errors)."""
    return request.POST if request.method == "POST" else None


def confirm(
    request: HttpRequest, *, title: str, message: str, cancel: str, button: str, action: str | None = None
) -> HttpResponse:
    """A GET shows what is about to happen; the form on it POSTs to `action` (the same URL by default)."""
    context = {"title": title, "message": message, "action": action or request.path, "cancel": cancel, "button": button}
    return render(request, "console/confirm.html", context)


def form_write(
    request: HttpRequest,
    form: forms.BaseForm,
    write: Callable[[], T],
    *,
    message: Callable[[T], str],
    ready: bool = True,
) -> T | None:
    """Run `write` (one service call) for a POSTed, valid `form` and flash `message` of what it returned.

    None means "show the page again": a GET, an invalid form, `ready` False (a formset beside the form is invalid, or
    the user asked for a preview), or a DomainError from the service, which becomes an error at the top of the form.
    """
    if request.method != "POST" or not form.is_valid() or not ready:
        return None
    try:
        result = write()
    except DomainError as exc:
        form.add_error(None, str(exc))
        return None
    messages.success(request, message(result))
    return result


def confirmed_write(
    request: HttpRequest, *, title: str, message: str, button: str, back: str, write: Callable[[], object], done: str
) -> HttpResponse:
    """GET asks to confirm (`message` says what the write changes); POST runs `write`, says `done` and goes `back`."""
    if request.method == "GET":
        return confirm(request, title=title, message=message, cancel=back, button=button)
    write()
    messages.success(request, done)
    return redirect(back)


def active_write(request: HttpRequest, write: Callable[[bool], T], *, noun: str, back: str) -> HttpResponse:
    """Switch something on (POSTed `is_active=1`) or off through `write(is_active)`; a DomainError becomes an error
    message. Either way the user goes `back` to the list."""
    active = request.POST.get("is_active") == "1"
    try:
        obj = write(active)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{noun} {obj} {'activated' if active else 'deactivated'}.")
    return redirect(back)
