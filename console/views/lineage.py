"""The compliance lineage: search, findings, exports and evidence packages (compliance, managers, admin), and the
segregation-of-duties rules managers keep."""

from datetime import UTC, date, datetime, time

from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from console.evidence import CSV_HEADER, csv_row, lineage_document
from console.forms import LineageSampleForm, SodRuleForm
from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, EXPORT_LINEAGE
from console.lib.errors import DomainError
from console.lib.exports import csv_response
from console.lib.views import get_or_404, posted
from console.models import EvidenceJob
from console.selectors import (
    LineageResult,
    evidence_job_get,
    evidence_job_recent,
    lineage_get,
    sod_rule_get,
    sod_rule_list,
)
from console.services import (
    evidence_job_create,
    evidence_package_bytes,
    lineage_export_record,
    sod_rule_create,
    sod_rule_delete,
    sod_rule_update,
)
from console.tasks import lineage_findings_check

EXPORT_FORMATS = ("csv", "json", "evidence")


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
@require_GET
def lineage_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    result = lineage_get(query=query) if query else None
    if result is not None and any(f.opens_case for f in result.findings):
        # Control cases are opened by Closeloop (system actor, idempotent per finding), never by the reader's request.
        lineage_findings_check.delay(txn_ids=[t["id"] for t in result.transactions])
    context = {"query": query, "result": result, "sample": LineageSampleForm(), "jobs": evidence_job_recent()}
    return render(request, "console/lineage.html", context)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
@require_POST
def lineage_sample_create(request: HttpRequest) -> HttpResponse:
    """Queue an auditor's sample (bulk evidence package); the job page shows its progress and then the download."""
    form = LineageSampleForm(request.POST)
    if form.is_valid():
        try:
            job = evidence_job_create(
                actor=actor_for(request.user),
                since=day_start(form.cleaned_data["since"]),
                until=day_start(form.cleaned_data["until"]),
                entity=form.cleaned_data["entity"],
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("evidence-job", job_id=job.pk)
    context = {"query": "", "result": None, "sample": form, "jobs": evidence_job_recent()}
    return render(request, "console/lineage.html", context, status=400)


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
@require_GET
def evidence_job_page(request: HttpRequest, job_id: str) -> HttpResponse:
    return render(request, "console/evidence_job.html", {"job": get_or_404(evidence_job_get, job_id=job_id)})


def evidence_job_file(job: EvidenceJob) -> HttpResponse:
    """The finished package as a download (streamed from disk); 409 while it is still being built."""
    if job.status != EvidenceJob.Status.DONE:
        return HttpResponse(f"the package is {job.status}", status=409)
    package = open(job.path, "rb")  # noqa: SIM115 - FileResponse streams it and closes it when the response is done
    return FileResponse(package, content_type="application/zip", as_attachment=True, filename=f"evidence-{job.pk}.zip")


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
@require_GET
def evidence_job_download(request: HttpRequest, job_id: str) -> HttpResponse:
    return evidence_job_file(get_or_404(evidence_job_get, job_id=job_id))


def export_filename(query: str, extension: str) -> str:
    return f"lineage-{slugify(query)[:60] or 'all'}.{extension}"


def lineage_export_response(*, result: LineageResult, fmt: str, actor: str) -> HttpResponse:
    """The export in `fmt`, after its audit entry; shared by the page and the API."""
    if fmt == "evidence":
        response = HttpResponse(evidence_package_bytes(result=result, actor=actor), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(result.query, "evidence.zip")}"'
        return response
    lineage_export_record(actor=actor, fmt=fmt, query=result.query, result=result)
    if fmt == "csv":
        return csv_response(export_filename(result.query, "csv"), CSV_HEADER, (csv_row(r) for r in result.rows))
    document = lineage_document(
        query=result.query,
        transactions=result.transactions,
        rows=result.rows,
        findings=result.findings,
        generated_at=result.generated_at,
    )
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{export_filename(result.query, "json")}"'
    return response


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
@require_GET
def lineage_export(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    fmt = request.GET.get("format", "csv")
    if not query or fmt not in EXPORT_FORMATS:
        return HttpResponse("name a business key or transaction id (q) and a format: csv, json or evidence", status=400)
    return lineage_export_response(result=lineage_get(query=query), fmt=fmt, actor=actor_for(request.user))


# ---- Segregation-of-duties rules (managers) -------------------------------------------------------------------------


def _sod_form_save(request: HttpRequest, form: SodRuleForm, rule_id: int | None) -> bool:
    data = form.cleaned_data
    fields = {k: data[k] for k in ("first_step", "second_step", "process", "description", "opens_case", "is_active")}
    try:
        if rule_id is None:
            sod_rule_create(actor=actor_for(request.user), **fields)
        else:
            sod_rule_update(rule=get_or_404(sod_rule_get, rule_id=rule_id), actor=actor_for(request.user), **fields)
    except DomainError as exc:
        form.add_error(None, str(exc))
        return False
    return True


@login_required
@permission_required(EXPORT_LINEAGE, raise_exception=True)
def sod_rule_list_view(request: HttpRequest) -> HttpResponse:
    """Everyone who reads the lineage sees the rules behind its findings; only managers may change them."""
    form = None
    if request.user.has_perm(EDIT_RULES):
        form = SodRuleForm(posted(request))
        if request.method == "POST" and form.is_valid() and _sod_form_save(request, form, None):
            return redirect("sod-rule-list")
    elif request.method == "POST":
        return HttpResponse(status=403)
    return render(request, "console/sod_rule_list.html", {"rules": sod_rule_list(), "form": form})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def sod_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(sod_rule_get, rule_id=rule_id)
    initial = {
        "first_step": rule.first_step,
        "second_step": rule.second_step,
        "process": rule.process,
        "description": rule.description,
        "opens_case": rule.opens_case,
        "is_active": rule.is_active,
    }
    form = SodRuleForm(posted(request), initial=initial)
    if request.method == "POST" and form.is_valid() and _sod_form_save(request, form, rule.pk):
        return redirect("sod-rule-list")
    return render(request, "console/sod_rule_form.html", {"rule": rule, "form": form})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def sod_rule_delete_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    sod_rule_delete(rule=get_or_404(sod_rule_get, rule_id=rule_id), actor=actor_for(request.user))
    return redirect("sod-rule-list")
