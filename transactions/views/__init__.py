"""Console pages of the transactions app, one module per audience: `transactions` (everyone who reads transactions),
`ingest` (the integration role) and `processes` (managers). Routes are in transactions/urls.py.

Plain function views: they read through selectors, write through services (which audit in the same transaction),
and turn a service's DomainError into a message or a form error, never a 500.
"""

from collections.abc import Callable
from typing import TypeVar

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from console.lib.errors import DomainError

T = TypeVar("T")


def form_write(
    request: HttpRequest,
    form: forms.BaseForm,
    write: Callable[[], T],
    *,
    message: Callable[[T], str],
    also_valid: bool = True,
) -> T | None:
    """Run `write` (one service call) for a POSTed, valid `form` and flash `message` of what it returned.

    None means "show the page again": a GET, an invalid form (or `also_valid` False, e.g. a formset beside it), or a
    DomainError from the service, which becomes an error at the top of the form.
    """
    if request.method != "POST" or not form.is_valid() or not also_valid:
        return None
    try:
        result = write()
    except DomainError as exc:
        form.add_error(None, str(exc))
        return None
    messages.success(request, message(result))
    return result
