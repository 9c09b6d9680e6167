"""View plumbing shared by the console pages."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

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
