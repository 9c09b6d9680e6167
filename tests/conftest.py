import os
import shutil
import uuid

import pytest
from django.db import connection

from console.celery import app as celery_app
from console.roles import ROLES
from tests.factories import UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _tasks_in_process(request: pytest.FixtureRequest):
    """Tasks run in-process in tests, even when CI exports a broker URL; `broker` tests use the real one."""
    if request.node.get_closest_marker("broker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _cache_of_its_own(settings):
    """Each test counts throttles and lockouts from zero, also on the Redis cache that CI shares between workers.

    A fresh key prefix isolates it; clearing instead would flush the shared Redis database (the broker's, too).
    """
    from axes.handlers.proxy import AxesProxyHandler

    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    AxesProxyHandler.get_implementation(force=True)  # axes keeps the cache object it was created with
    yield
    AxesProxyHandler.implementation = None


@pytest.fixture(scope="session", autouse=True)
def _close_pool_before_dropping_test_database(django_db_setup, django_db_blocker):
    """Threads (live server, concurrency tests) return connections to the pool, which would keep the test DB busy."""
    yield
    with django_db_blocker.unblock():
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture(scope="session", autouse=True)
def _audit_truncate_for_test_flushes(django_db_setup, django_db_blocker):
    """Transactional tests empty the tables with TRUNCATE between tests (Django's flush), which the audit table refuses
    in production (console migration 0005); in the test database that trigger is off, and the test proving it
    switches it on inside its own transaction."""
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE console_auditentry DISABLE TRIGGER audit_no_truncate")
    yield


def pytest_runtest_setup(item: pytest.Item) -> None:
    postgres = item.get_closest_marker("postgres")
    if postgres and connection.vendor != "postgresql":
        why = postgres.kwargs.get("reason", "SQLite cannot express this")
        pytest.skip(f"needs PostgreSQL (set DATABASE_URL): {why}")
    if item.get_closest_marker("broker") and not os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("needs a broker: set CELERY_BROKER_URL (CI runs with Redis)")


@pytest.fixture
def role_user(db):
    """Build a user holding the given roles: role_user("finance_ops")."""

    def make(*roles: str, username: str | None = None):
        unknown = set(roles) - set(ROLES)
        assert not unknown, f"unknown roles {unknown}"
        kwargs = {"username": username} if username else {}
        return UserFactory(roles=list(roles), **kwargs)

    return make


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CLOSELOOP_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required here (CLOSELOOP_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing")
    pytest.skip("no Chromium: install Debian's package (apt-get install chromium) to run browser tests")


@pytest.fixture(scope="session")
def _static_files_through_whitenoise():
    """The live server must serve static files the way production does (WhiteNoise, hashed manifest names).

    Django's live server otherwise answers /static/ itself through the finders, which know no hashed names.
    """
    import django.contrib.staticfiles.handlers as handlers

    original = handlers.StaticFilesHandler
    handlers.StaticFilesHandler = lambda app: app
    yield
    handlers.StaticFilesHandler = original


@pytest.fixture(scope="session")
def live_server(_static_files_through_whitenoise, live_server):
    return live_server


@pytest.fixture
def browser_page(chromium_path: str, live_server, monkeypatch):
    """A Playwright page in Debian's Chromium; Django's ORM may be used from the test alongside it."""
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15000)
        # Every browser test also proves the Content-Security-Policy: Chromium reports each refused script, style
        # or image on the console, and any such report fails the test.
        violations: list[str] = []
        page.on("console", lambda message: _record_csp_violation(message, violations))
        try:
            yield page
        finally:
            browser.close()
        assert not violations, f"Content-Security-Policy violations: {violations}"


def _record_csp_violation(message, violations: list[str]) -> None:
    if "Content Security Policy" in message.text:
        where = f"{message.location.get('url')}:{message.location.get('lineNumber')}"
        violations.append(f"{message.page.url if message.page else ''} {where}: {message.text[:200]}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the size of bounded fuzz runs (tests record it with record_property), so that a CI log shows they ran.

    Here, not beside those tests: with xdist only the controller prints, and it loads no conftest below this one."""
    ingest_examples = 0
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "schemathesis" and report.when == "call":
                terminalreporter.write_line(str(value))
            elif name == "ingest_property_examples":
                ingest_examples += value
    if ingest_examples:
        terminalreporter.write_line(f"ingest property tests: {ingest_examples} generated examples ran")
