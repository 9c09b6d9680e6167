import gzip
import io
import json
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client

from console.lib.audit import AuditEntry
from tests.factories import canonical
from transactions.canonical import CANONICAL_FIELDS
from transactions.models import DeadLetter, Event, IdempotencyKey, IngestBatch, RedactionRule
from transactions.services import ingest_token_create, ingest_token_revoke

URL = "/api/v1/events"


@pytest.mark.django_db
def test_batch_is_stored_with_counts_and_indexed_rejections(send, source):
    records = [
        canonical(event_id="a"),
        canonical(event_id="b", currency="euro"),
        canonical(event_id="c", occurred_at="yesterday"),
        canonical(event_id="d", status="error", error={"code": "TAX-17", "message": "tax code mismatch"}),
        "not an object",
    ]
    response = send(URL, records)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [1, 2, 4]
    assert "currency" in body["rejected"][0]["error"]
    assert "occurred_at" in body["rejected"][1]["error"]
    stored = Event.objects.get(event_id="a")
    assert stored.source == source and stored.system == "salesforce-crm"
    assert stored.amount == Decimal("125000.0000") and stored.approval["actor"] == "j.doe"
    assert Event.objects.get(event_id="d").error == {"code": "TAX-17", "message": "tax code mismatch", "type": None}
    letters = DeadLetter.objects.order_by("record_index")
    assert [d.record_index for d in letters] == [1, 2, 4]
    assert letters[0].raw["currency"] == "euro" and letters[0].source == source
    batch = IngestBatch.objects.get()
    assert (batch.accepted, batch.duplicates, batch.rejected) == (2, 0, 3)


@pytest.mark.django_db
def test_every_record_rejected_still_answers_200(send):
    response = send(URL, [{"kind": "x"}, {"event_id": "z"}])
    assert response.status_code == 200
    assert response.json()["accepted"] == 0 and len(response.json()["rejected"]) == 2


@pytest.mark.django_db
def test_second_delivery_is_a_duplicate_and_changes_nothing(send):
    records = [canonical(event_id="a"), canonical(event_id="b"), canonical(event_id="a")]
    first = send(URL, records).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    changed = [canonical(event_id="a", kind="something.else"), canonical(event_id="b")]
    second = send(URL, changed).json()
    assert (second["accepted"], second["duplicates"]) == (0, 2)
    assert Event.objects.count() == 2
    assert Event.objects.get(event_id="a").kind == "contract.approved"


@pytest.mark.django_db
def test_idempotency_is_per_source(send, client):
    from transactions.services import ingest_source_create

    other = ingest_source_create(name="crm", actor="system:test")
    _, other_token = ingest_token_create(source=other, actor="system:test")
    send(URL, [canonical(event_id="same")])
    response = client.post(
        URL,
        [canonical(event_id="same")],
        content_type="application/json",
        headers={"Authorization": f"Bearer {other_token}"},
    )
    assert response.json()["accepted"] == 1


@pytest.mark.django_db
def test_ndjson_with_a_broken_line(send):
    lines = [json.dumps(canonical(event_id="n1")), "{broken", "", json.dumps(canonical(event_id="n2"))]
    response = send(URL, "\n".join(lines).encode(), content_type="application/x-ndjson")
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"][0]["index"] == 1 and "not valid JSON" in body["rejected"][0]["error"]


@pytest.mark.django_db
def test_unknown_fields_are_kept_in_attributes_and_keys_are_normalised(send):
    record = canonical(event_id="u", sap_client="100", business_keys={"order": " 0000012345 ", "Customer": "x"})
    response = send(URL, [record, canonical(event_id="v", business_keys={"order": "0000012345", "invoice": " inv-9 "})])
    body = response.json()
    assert body["accepted"] == 1 and "business key type" in body["rejected"][0]["error"]
    stored = Event.objects.get(event_id="v")
    assert stored.business_keys == {"order": "12345", "invoice": "INV-9"}
    send(URL, [canonical(event_id="w", shoe_size=44)])
    assert Event.objects.get(event_id="w").attributes == {"shoe_size": 44, "region": "EMEA"}


@pytest.mark.django_db
def test_values_postgres_cannot_store_are_rejected_per_record(send):
    records = [
        canonical(event_id="nul", attributes={"note": "a\u0000b"}),
        canonical(event_id="ok"),
        canonical(event_id="surrogate", kind="\ud800"),
        canonical(event_id="big", amount="1e30"),
        canonical(event_id="far", occurred_at="9999-12-31T23:59:59Z"),
    ]
    body = json.dumps(records).encode()  # json escapes the NUL and the lone surrogate, as a sender's JSON would
    response = send(URL, body)
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 1
    assert [r["index"] for r in result["rejected"]] == [0, 2, 3, 4]
    assert DeadLetter.objects.count() == 4  # kept, escaped, never a 500


@pytest.mark.django_db
def test_undecodable_body_is_400_and_kept(send):
    response = send(URL, b"[{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    letter = DeadLetter.objects.get()
    assert letter.raw is None and letter.raw_text == "[{not json"


@pytest.mark.django_db
def test_wrong_content_type_is_415(send):
    assert send(URL, b"<xml/>", content_type="application/xml").status_code == 415


@pytest.mark.django_db
def test_auth_is_required(client, source, token):
    assert client.post(URL, [], content_type="application/json").status_code == 401
    bad = client.post(URL, [], content_type="application/json", headers={"Authorization": "Bearer clt_nope"})
    assert bad.status_code == 401 and bad["WWW-Authenticate"].startswith("Bearer")
    from transactions.models import IngestToken

    ingest_token_revoke(token=IngestToken.objects.get(source=source), actor="system:test")
    revoked = client.post(URL, [], content_type="application/json", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


@pytest.mark.django_db
def test_record_limit_is_413(send):
    response = send(URL, [{}] * 10_001)
    assert response.status_code == 413
    assert Event.objects.count() == 0 and DeadLetter.objects.count() == 0


@pytest.mark.django_db
def test_byte_limit_is_413_also_after_gzip(send, settings):
    settings.INGEST_MAX_BODY_BYTES = 64 * 1024
    assert send(URL, b"[" + b" " * (70 * 1024) + b"]").status_code == 413
    assert send(URL, [canonical()], gzipped=True).json()["accepted"] == 1
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")
    assert len(bomb) < 64 * 1024
    response = send(URL, bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413 and "decompressed" in response.json()["detail"]
    assert send(URL, b"not gzip at all", headers={"Content-Encoding": "gzip"}).status_code == 400
    assert send(URL, b"[]", headers={"Content-Encoding": "br"}).status_code == 415


@pytest.mark.django_db
def test_a_storage_failure_leaves_nothing_half_written(send, monkeypatch):
    import transactions.services.ingest as services

    def broken(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("disk full")

    # The last write of the batch's transaction, after the batch row, the claimed keys and the events.
    monkeypatch.setattr(services, "dead_letters_store", broken)
    response = send(URL, [canonical(event_id="x"), canonical(event_id="y", currency="bad")])
    assert response.status_code == 503 and response["Retry-After"]
    assert IngestBatch.objects.count() == 0 and IdempotencyKey.objects.count() == 0
    assert DeadLetter.objects.count() == 0
    monkeypatch.undo()
    assert send(URL, [canonical(event_id="x")]).json()["accepted"] == 1  # the retry is not taken for a duplicate


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 100], ids=["multi-row insert", "binary copy"])
def test_what_json_can_hold_is_stored_whatever_the_write_path(send, batch_size):
    # The event's JSON columns are encoded by orjson, which refuses integers past 64 bits: those must still be stored.
    # The text "\\u0000" (a backslash, not a NUL) must not be mistaken for the NUL PostgreSQL refuses.
    odd = {"ledger_sequence": 2**70, "note": "escape \\u0000 kept", "unicode": "Zahlung f\u00e4llig \u20ac"}
    records = [canonical(event_id=f"odd-{i}", attributes=odd) for i in range(batch_size)]
    body = send(URL, records).json()
    assert body["accepted"] == batch_size, body
    assert Event.objects.get(event_id="odd-0").attributes == {**odd}


@pytest.mark.django_db
@pytest.mark.parametrize("big_integer", [False, True], ids=["orjson", "json fallback"])
def test_one_statement_and_copy_paths_store_the_same_values(send, big_integer):
    # A single event travels as JSON inside one statement (jsonb_to_recordset), a large batch by binary COPY: every
    # column must come out the same, whatever a sender's values hold (an integer past 64 bits takes json.dumps).
    edge = {
        "occurred_at": "2026-05-18T10:15:02.123456+05:30",
        "amount": "1E+3",
        "kind": "invoice.posted 100% 'quoted' \\ back\\slash \"dq\"",
        "entity": None,
        "duration_ms": 86_400_000,
        "links": [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4737", "span_id": "00f067aa0ba902b8"}],
        "error": {"code": "VF 004", "message": "Zahlung f\u00e4llig \u20ac; $1 {x}"},
        "status": "error",
        "attributes": {
            "nested": {"list": [1, 2.5, None, True]},
            "%s": "%(x)s",
            **({"big": 2**70} if big_integer else {}),
        },
    }
    assert send(URL, [canonical(event_id="single", **edge)]).json()["accepted"] == 1
    send(URL, [canonical(event_id=f"copy-{i}", **edge) for i in range(100)])
    columns = [name for name in CANONICAL_FIELDS if name != "event_id"]
    single = Event.objects.filter(event_id="single").values(*columns).get()
    copied = Event.objects.filter(event_id="copy-0").values(*columns).get()
    assert single == copied
    assert single["amount"] == Decimal("1000") and single["occurred_at"].microsecond == 123456
    assert single["kind"] == edge["kind"] and single["attributes"] == edge["attributes"]


@pytest.mark.django_db
def test_redaction_masks_before_anything_is_stored(send, source):
    RedactionRule.objects.create(source=source, pattern="*email*", action="mask")
    RedactionRule.objects.create(pattern="phone", action="drop")
    RedactionRule.objects.create(pattern="iban", action="hash")
    attrs = {"contact_email": "a@b.example", "phone": "+49 1", "iban": "DE89", "region": "EMEA"}
    send(URL, [canonical(event_id="r", attributes=attrs), canonical(event_id="bad", currency="x", attributes=attrs)])
    stored = Event.objects.get(event_id="r").attributes
    assert stored["contact_email"] == "***" and "phone" not in stored and stored["iban"].startswith("sha256:")
    assert stored["region"] == "EMEA"
    dead = DeadLetter.objects.get().raw["attributes"]
    assert dead["contact_email"] == "***" and "phone" not in dead
    # An unknown top-level field is folded into the attributes and redacted like them.
    send(URL, [canonical(event_id="top", billing_email="c@d.example", phone="+49 2")])
    stored = Event.objects.get(event_id="top").attributes
    assert stored["billing_email"] == "***" and "phone" not in stored


@pytest.mark.django_db
def test_correlation_is_enqueued_once_per_batch(send, monkeypatch, django_capture_on_commit_callbacks):
    from transactions import tasks

    calls = []
    monkeypatch.setattr(tasks.correlate_batch, "delay", lambda batch_id: calls.append(batch_id))
    with django_capture_on_commit_callbacks(execute=True):
        send(URL, [canonical(event_id=str(i)) for i in range(5)])
    assert calls == [IngestBatch.objects.get().pk]


@pytest.mark.django_db
def test_create_ingest_token_command(client, capsys):
    call_command("create_ingest_token", "--source", "sap-s4-prod")
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("clt_")
    response = client.post(
        URL, [canonical()], content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.json()["accepted"] == 1
    assert AuditEntry.objects.filter(action="ingest_token.created").exists()
    from transactions.models import IngestToken

    assert secret not in IngestToken.objects.values_list("digest", flat=True)[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_single_event_statement_is_prepared_once_per_connection(send):
    # Parsing and planning the claim + insert statement on every request was most of PostgreSQL's CPU per event.
    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%jsonb_to_recordset%"]
            )
            return cursor.fetchone()[0]

    assert send(URL, [canonical(event_id="prepared-0")]).json()["accepted"] == 1
    # psycopg forgets (without deallocating) a statement whose execution failed, so an earlier test's failure on this
    # pooled connection may have left one more behind: what matters is that later requests add none.
    first = prepared()
    for n in range(1, 4):
        assert send(URL, [canonical(event_id=f"prepared-{n}")]).json()["accepted"] == 1
    assert first >= 1 and prepared() == first


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_deliveries_store_each_record_once(source, token):
    records = [canonical(event_id=f"race-{i}", span_id=f"{i + 1:016x}") for i in range(200)]
    payload = json.dumps(records)
    results: list[dict] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        try:
            barrier.wait()
            response = Client().generic(
                "POST", URL, payload, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
            )
            results.append(response.json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 600
    assert Event.objects.count() == 200


@pytest.mark.postgres
@pytest.mark.django_db
def test_events_live_in_daily_partitions_and_retention_drops_them(send, settings):
    from datetime import timedelta

    from django.utils import timezone

    from transactions.partitions import event_partitions_create
    from transactions.services import ingest_retention_apply

    send(URL, [canonical(event_id="today")])
    today = timezone.now().date()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM transactions_event")
        assert cursor.fetchone()[0] == f"transactions_event_p{today:%Y%m%d}"
    old_day = today - timedelta(days=settings.EVENT_RETENTION_DAYS + 3)
    event_partitions_create(days=[old_day])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO transactions_event (received_at, source_id, batch_id, channel, dedup_key, occurred_at, system,"
            " kind, status, links, business_keys, attributes) SELECT %s, source_id, batch_id, channel, 'old', "
            "occurred_at, system, kind, status, links, business_keys, attributes FROM transactions_event LIMIT 1",
            [timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 3)],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # retention runs in its own transaction in production
    removed = ingest_retention_apply()
    assert removed["events"] == 1
    assert list(Event.objects.values_list("event_id", flat=True)) == ["today"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"transactions_event_p{old_day:%Y%m%d}"])
        assert cursor.fetchone()[0] is None


@pytest.mark.django_db
def test_redaction_also_covers_unknown_top_level_fields(send):
    RedactionRule.objects.create(pattern="*email*", action="drop")
    send(URL, [canonical(event_id="t", customer_email="x@y.example")])
    assert "customer_email" not in Event.objects.get(event_id="t").attributes


@pytest.mark.django_db
def test_retention_keeps_a_dead_letter_its_sender_still_repeats(source, settings):
    from datetime import timedelta

    from django.utils import timezone

    from transactions.models import DeadLetter
    from transactions.services import ingest_retention_apply

    now = timezone.now()
    old = now - timedelta(days=settings.EVENT_RETENTION_DAYS + 3)
    common = {"source": source, "channel": "native", "reason": "missing field 'kind'", "raw": {}}
    still_repeated = DeadLetter.objects.create(**common, received_at=old, repeats=40, last_received_at=now)
    forgotten = DeadLetter.objects.create(**common, received_at=old, repeats=2, last_received_at=old)
    never_repeated = DeadLetter.objects.create(**common, received_at=old)
    assert ingest_retention_apply(now=now)["dead_letters"] == 2
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [still_repeated.pk]
    assert not DeadLetter.objects.filter(pk__in=[forgotten.pk, never_repeated.pk]).exists()


@pytest.mark.django_db
def test_rules_and_token_are_read_once_per_process_until_they_change(send, source, token):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from transactions.models import ExtractionRule, IngestToken

    send(URL, [canonical(event_id="warm")])

    def tables_read() -> str:
        with CaptureQueriesContext(connection) as queries:
            assert send(URL, [canonical(event_id=f"e{len(seen)}")]).status_code == 200
        seen.append(1)
        return " ".join(q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT"))

    seen: list[int] = []
    reads = tables_read()
    for table in ("transactions_extractionrule", "transactions_redactionrule", "transactions_sourcealias"):
        assert table not in reads
    assert "transactions_ingesttoken" not in reads
    ExtractionRule.objects.create(kind_pattern="never.*", action="mark_failed")
    assert "transactions_extractionrule" in tables_read()  # a change is read at once
    ingest_token_revoke(token=IngestToken.objects.get(source=source), actor="system:test")
    response = send(URL, [canonical(event_id="after-revocation")])
    assert response.status_code == 401


def _through_wsgi(path: str, *, method: str = "GET", body: bytes = b"", token: str = "") -> tuple[str, dict, bytes]:
    """A request as gunicorn hands it to the application: (status, headers, body)."""
    from console.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    started: list = []
    chunks = application(environ, lambda status, headers: started.append((status, dict(headers))))
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return *started[0], content


@pytest.mark.django_db(transaction=True)  # served as in production: the handler ends the request's connection use
def test_ingest_is_served_through_its_own_short_middleware_chain(token):
    status, headers, content = _through_wsgi(
        URL, method="POST", body=json.dumps([canonical(event_id="wsgi-1")]).encode(), token=token
    )
    assert status.startswith("200") and json.loads(content)["accepted"] == 1, content
    assert headers["X-Content-Type-Options"] == "nosniff"  # transport security still applies
    assert "Content-Security-Policy" not in headers and "Set-Cookie" not in headers  # the pages' middleware does not
    status, headers, _ = _through_wsgi("/accounts/login/")
    assert status.startswith("200") and "Content-Security-Policy" in headers
    assert Event.objects.filter(event_id="wsgi-1").count() == 1
