"""Every REST operation holds to its published OpenAPI schema (/api/v1/schema/): schemathesis generates requests from
the schema and checks each answer: never a 500, status code, content type, headers and body as documented.

Bounded for CI (SCHEMATHESIS_EXAMPLES per operation, default 8, about a minute in all; a deeper run sets more); the
run's size is reported at the end of the pytest output ("schemathesis: N cases ...").
"""

import os
import time

import pytest
import schemathesis
from django.core.management import call_command
from django.test.client import ClientHandler
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from transactions.services import ingest_source_create, ingest_token_create

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
# Not checked: "schema-valid data is accepted". A schema cannot say that a queue id or calendar slug must exist, or
# that a period must end after it starts; such requests answer 400, which every operation documents.
INGEST_PATHS = {"/api/v1/events", "/api/v1/cloudevents", "/v1/traces", "/v1/logs"}


@pytest.fixture
def wsgi_in_test_transaction():
    """A WSGI app over Django's test handler: requests run like the test client's, inside the test's transaction (the
    plain WSGI app closes the database connection around each request, which on PostgreSQL ends the test's)."""
    handler = ClientHandler(enforce_csrf_checks=False)

    def app(environ: dict, start_response):
        response = handler(environ)
        headers = list(response.items()) + [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return [response.content] if not response.streaming else response.streaming_content

    return app


@pytest.fixture
def credentials(role_user, capsys, settings) -> dict[str, str]:
    # Requests without or with wrong credentials are part of the run; they must not lock the real ones out.
    settings.AXES_FAILURE_LIMIT = 1_000_000
    settings.INGEST_THROTTLE_RATE = "1000000/min"
    admin = role_user("admin", username="fuzz-admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    call_command("create_api_token", "--user", "fuzz-admin")
    api_token = capsys.readouterr().out.strip()
    source = ingest_source_create(name="fuzz-source", actor="system:test")
    ingest_token = ingest_token_create(source=source, actor="system:test")[1]
    return {"api": f"Token {api_token}", "ingest": f"Bearer {ingest_token}"}


@pytest.mark.django_db
@pytest.mark.timeout(600)  # bounded by the example count; the suite's 120 s limit is too short on a loaded machine
def test_every_operation_answers_as_its_schema_says(client, credentials, wsgi_in_test_transaction, record_property):
    schema_document = client.get("/api/v1/schema/", headers={"Accept": "application/json"}).json()
    schema = schemathesis.openapi.from_dict(schema_document)
    schema.app = wsgi_in_test_transaction
    cases = operations = 0
    failures: list[str] = []
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        auth = credentials["ingest" if operation.path in INGEST_PATHS else "api"]
        try:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                cases += _fuzz(operation, auth, mode)
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; the failures are listed together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    summary = f"schemathesis: {cases} cases over {operations} operations in {elapsed:.0f} s, {len(failures)} failing"
    record_property("schemathesis", summary)
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


def _fuzz(operation, auth: str, mode: GenerationMode) -> int:
    """Run one operation's generated cases; how many ran."""
    ran = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        if mode is GenerationMode.POSITIVE:
            case.call_and_validate(headers={"Authorization": auth}, excluded_checks=[positive_data_acceptance])
        else:
            # Invalid input: whatever the answer, never a 500. (Lenient handling, such as ignoring an unknown query
            # parameter, and Django's own 404 page for a path no route matches, are not failures.)
            case.call_and_validate(headers={"Authorization": auth}, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # an operation with no input has no invalid variant; anything else must generate
    return ran


# What the run found, kept as plain regression tests: each answered 500 before.


@pytest.mark.django_db
def test_a_malformed_transaction_id_is_404(client, credentials):
    response = client.get("/api/v1/transactions/%C3%B8/", headers={"Authorization": credentials["api"]})
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field"), [("/api/v1/sla-definitions/", "target_seconds"), ("/api/v1/monitors/volume/", "window_seconds")]
)
def test_a_duration_past_what_can_be_stored_is_400(client, credentials, path, field):
    response = client.post(
        path,
        {field: 4858380639437352815},
        content_type="application/json",
        headers={"Authorization": credentials["api"]},
    )
    assert response.status_code == 400 and field in response.json()["errors"]


@pytest.mark.django_db
def test_a_time_filter_with_an_offset_postgres_cannot_store_is_read_in_utc(client, credentials):
    response = client.get(
        "/api/v1/audit-entries/",
        {"since": "3536-06-06T18:29:31-16:06"},
        headers={"Authorization": credentials["api"]},
    )
    assert response.status_code == 200 and response.json()["results"] == []
    response = client.get(
        "/api/v1/transactions/", {"since": "9999-12-31T23:00:00-16:00"}, headers={"Authorization": credentials["api"]}
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_nul_in_a_request_body_is_400(client, credentials):
    body = {"slug": "a\x00b", "name": "n", "calendar": "x\x00", "target_seconds": 3600}
    response = client.post(
        "/api/v1/sla-definitions/", body, content_type="application/json", headers={"Authorization": credentials["api"]}
    )
    assert response.status_code == 400
