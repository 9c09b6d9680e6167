from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.forms import SAVED_VIEW_PAGES, SavedViewForm
from console.services import saved_view_delete, saved_view_save


@login_required
@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        if "page" in form.errors:
            return HttpResponseBadRequest("unknown page")
        target = reverse(SAVED_VIEW_PAGES[form.cleaned_data["page"]])
        problem = "Give the view a name to save it." if "name" in form.errors else "That filter cannot be saved."
        messages.error(request, problem)
        return redirect(f"{target}?{form.cleaned_data.get('query', '')}")
    target = reverse(SAVED_VIEW_PAGES[form.cleaned_data["page"]])
    view = saved_view_save(user=request.user, **form.cleaned_data)
    messages.success(request, f"Saved view “{view.name}”.")
    return redirect(f"{target}?{view.query}")


@login_required
@require_POST
def saved_view_delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    page = request.POST.get("page", "")
    saved_view_delete(user=request.user, view_id=view_id)
    return redirect(reverse(SAVED_VIEW_PAGES.get(page, "home")))
