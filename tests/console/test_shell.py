import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from console.celery import app as celery_app
from console.periodic import run_due_jobs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_health_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unreachable"


@pytest.mark.django_db
def test_home_draws_a_chart_from_the_database(client, role_user):
    client.force_login(role_user("manager"))
    html = client.get(reverse("home")).content.decode()
    assert "data-figure=" in html
    assert "auth" in html  # the login above is an audit entry, drawn as the "auth" family
    assert re.search(r'src="/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]+\.js"', html)
    assert re.search(r'src="/static/vendor/htmx/htmx\.min\.[0-9a-f]+\.js"', html)


@pytest.mark.django_db
def test_no_page_loads_anything_from_another_host(client, role_user):
    client.force_login(role_user("admin"))
    for url in (reverse("home"), reverse("audit-list"), "/api/v1/docs/", reverse("login")):
        html = client.get(url).content.decode()
        assert not re.search(r'(src|href)="(https?:)?//', html), url


@pytest.mark.django_db
def test_openapi_schema_is_served(client, role_user):
    client.force_login(role_user("integration"))
    response = client.get("/api/v1/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert "/api/v1/audit-entries/" in response.json()["paths"]


@pytest.mark.django_db
def test_periodic_jobs_run_in_process_when_due():
    last_runs: dict[str, float] = {}
    assert run_due_jobs(last_runs) == list(settings.CELERY_BEAT_SCHEDULE)
    assert "audit-chain-check" not in run_due_jobs(last_runs)  # an hourly job is not due again a moment later


@pytest.mark.django_db
def test_the_in_process_runner_reads_the_schedule_from_settings(settings):
    settings.CELERY_BEAT_SCHEDULE = {"only-this": dict(settings.CELERY_BEAT_SCHEDULE["audit-chain-check"])}
    assert run_due_jobs({}) == ["only-this"]


def test_beat_reads_the_same_schedule_from_settings():
    assert celery_app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE


def test_every_periodic_job_names_a_registered_task_and_expires():
    celery_app.loader.import_default_modules()
    for name, job in settings.CELERY_BEAT_SCHEDULE.items():
        assert job["task"] in celery_app.tasks, name
        assert job["options"]["expires"] > 0, name


# HSTS preload commits the whole domain to HTTPS in browsers' built-in lists: only its owner can decide that.
DOMAIN_DECISIONS = {"security.W021"}


def test_deploy_check_is_clean_but_for_tls_and_domain_settings():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 64 + "-not-a-real-secret-but-long-and-random-enough",
        "ALLOWED_HOSTS": "closeloop.example.com",
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reported = set(re.findall(r"\(([a-z_.]+\.[EW]\d+)\)", result.stdout + result.stderr))
    assert reported <= DOMAIN_DECISIONS, result.stdout + result.stderr


def test_settings_refuse_to_start_without_a_secret_key_in_production():
    env = {**os.environ, "DEBUG": "0"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_request_spans_are_named_after_the_route(client):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the global provider can be set once per process; the proxy tracer follows
    client.get("/healthz")
    spans = [s for s in exporter.get_finished_spans() if s.name == "GET /healthz"]
    assert spans and spans[0].attributes["http.response.status_code"] == 200


@pytest.mark.broker
def test_task_round_trips_through_a_real_worker(tmp_path):
    from celery.result import allow_join_result

    from console.tasks import ping

    queue = f"test-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1"},
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        result = ping.apply_async(queue=queue)
        # Celery's "inside a task" flag is process-wide: an eager task still running in another thread of this test
        # process (a live server left by an earlier test) would make get() refuse although this thread is no task.
        with allow_join_result():
            assert result.get(timeout=60) == "pong"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.django_db
def test_demo_users_log_in_as_each_role_and_ops_works_some_queues(client, capsys):
    from django.core.management import call_command

    from exceptions.models import Queue
    from exceptions.reference import exceptions_reference_data_load

    exceptions_reference_data_load()
    call_command("create_demo_users")
    call_command("create_demo_users")  # a second `make demo` reuses what exists
    assert "closeloop-demo" in capsys.readouterr().out
    for username in ("ops", "manager", "compliance", "integration", "admin"):
        assert client.login(username=username, password="closeloop-demo"), username
    assert Queue.objects.filter(members__username="ops").count() == 5


@pytest.mark.django_db
def test_a_saved_view_without_a_name_is_not_saved_and_the_filter_is_kept(client, role_user):
    from console.lib.saved_views import SavedView

    client.force_login(role_user("finance_ops"))
    response = client.post(reverse("saved-view-create"), {"page": "queue", "name": "  ", "query": "status=open"})
    assert response.status_code == 302 and response["Location"] == reverse("queue-list") + "?status=open"
    assert not SavedView.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance_ops", "manager", "compliance", "integration", "admin"])
def test_no_two_navigation_items_share_a_name(role_user, role):
    from console.lib.navigation import navigation_for

    labels = [item.label for _, items in navigation_for(role_user(role)) for item in items]
    assert len(labels) == len(set(labels)), labels


@pytest.mark.django_db
def test_admin_and_api_docs_lead_back_to_the_console(client, role_user):
    admin = role_user("admin")
    admin.is_staff = admin.is_superuser = True  # as create_demo_users makes the administrator
    admin.save()
    client.force_login(admin)
    for url in (reverse("admin:auth_user_changelist"), reverse("api-docs")):
        html = client.get(url).content.decode()
        assert f'href="{reverse("home")}" data-testid="back-to-console"' in html, url
    assert "Closeloop administration" in client.get(reverse("admin:index")).content.decode()
