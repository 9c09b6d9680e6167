import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exceptions.models import Queue
from tests.factories import failures_raise, reference_data_load
from transactions.services import ingest_source_create


@pytest.fixture
def reference(db):
    reference_data_load()


@pytest.fixture
def source(db):
    return ingest_source_create(name="erp", actor="system:test")


@pytest.fixture
def raise_failures(source, reference):
    """Ingest, correlate and classify failure records (as the tasks would, in order); returns the event ids."""

    def run(*records: dict) -> list[int]:
        return failures_raise(source, *records)

    return run


class Recorder:
    """A local HTTP endpoint that records what it receives and answers with a chosen status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.statuses: list[int] = []  # answered first, one per request, before `status`
        self.delay = 0.0  # seconds before answering
        self.answer = b'{"accepted": true}'
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                time.sleep(recorder.delay)
                self.send_response(recorder.statuses.pop(0) if recorder.statuses else recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(recorder.answer)))
                self.end_headers()
                self.wfile.write(recorder.answer)

            do_PUT = do_PATCH = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def json(self, index: int = -1) -> dict:
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def endpoint():
    recorder = Recorder()
    recorder.thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


@pytest.fixture
def operator(role_user):
    user = role_user("finance_ops", username="ines")
    Queue.objects.get(slug="integration-platform").members.add(user)
    return user
