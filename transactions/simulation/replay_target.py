"""The simulated estate's replay webhook: what a system does when Closeloop replays one of its failed steps.

A real system's replay endpoint takes the record, redoes the step under the Idempotency-Key it was given and reports
the outcome through its usual telemetry. This one does the same for every simulated system: it answers 202, then
sends the step's success event (same system, kind and business keys, `idempotency_key` set to the replay's id)
through the native decoder and the ingest service, as the system's own deliveries arrive. Closeloop's replay
confirmation then finds that event and resolves the case, so a demo replay takes the whole real path: request, HTTP
send, success event, confirmation.
"""

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db import connections
from django.utils import timezone

from transactions import native
from transactions.choices import Channel
from transactions.services import IngestOutcome, records_ingest
from transactions.simulation.builder import iso
from transactions.simulation.catalogue import SYSTEMS
from transactions.simulation.sources import simulator_sources_ensure

logger = logging.getLogger(__name__)

PATH_PREFIX = "/replay/"
MAX_BODY = 256 * 1024  # Closeloop sends one business document per replay
RECORD_FIELDS = ("system", "kind", "business_keys", "entity", "amount", "currency")

Delivered = Callable[[dict[str, Any], IngestOutcome], None]  # the success record sent, and ingest's answer


def success_record(*, system: str, replay_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The event a system sends once a replayed step went through: the step's record, succeeded now."""
    record = {name: payload[name] for name in RECORD_FIELDS if payload.get(name) not in (None, "", {})}
    attributes = payload.get("attributes") if isinstance(payload.get("attributes"), dict) else {}
    return {
        **record,
        # The Idempotency-Key makes the id: a resent replay is a duplicate delivery, not a second success.
        "event_id": f"replay-{replay_id}",
        "system": system,
        "occurred_at": iso(timezone.now()),
        "status": "ok",
        "attributes": {**attributes, "idempotency_key": replay_id},
    }


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_POST(self) -> None:
        system = self.path.removeprefix(PATH_PREFIX).strip("/")
        replay_id = self.headers.get("Idempotency-Key", "")
        length = int(self.headers.get("Content-Length") or 0)
        if not self.path.startswith(PATH_PREFIX) or system not in SYSTEMS:
            return self._answer(HTTPStatus.NOT_FOUND)
        if not replay_id or not 0 < length <= MAX_BODY:
            return self._answer(HTTPStatus.BAD_REQUEST)
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            return self._answer(HTTPStatus.BAD_REQUEST)
        if not isinstance(payload, dict) or not payload.get("kind"):
            return self._answer(HTTPStatus.UNPROCESSABLE_ENTITY)
        self._answer(HTTPStatus.ACCEPTED)
        # After the answer, as a system's telemetry follows its API's: the sender is no longer waiting.
        self.server.redo(system=system, replay_id=replay_id, payload=payload)

    def _answer(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulate.replay_request", extra={"line": format % args})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], delivered: Delivered | None) -> None:
        super().__init__(address, _Handler)
        self.delivered = delivered
        self.sources = simulator_sources_ensure()
        self.done = threading.Condition()
        self.redone = 0

    def redo(self, *, system: str, replay_id: str, payload: dict[str, Any]) -> None:
        try:
            record = success_record(system=system, replay_id=replay_id, payload=payload)
            records = native.decode_native(json.dumps([record]).encode(), content_type="application/json")
            outcome = records_ingest(source=self.sources[system], channel=Channel.NATIVE, records=records)
            if self.delivered is not None:
                self.delivered(record, outcome)
        except Exception:
            logger.exception("simulate.replay_failed", extra={"replay": replay_id})
        finally:
            connections.close_all()  # this request's thread ends here, its connection with it
            with self.done:
                self.redone += 1
                self.done.notify_all()


class EstateReplayTarget:
    """The replay webhook of every simulated system on 127.0.0.1 (an ephemeral port), served from a thread."""

    def __init__(self, *, delivered: Delivered | None = None, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), delivered)
        self._thread = threading.Thread(target=self._server.serve_forever, name="estate-replays", daemon=True)

    def start(self) -> "EstateReplayTarget":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url_for(self, system: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH_PREFIX}{system}"

    def wait_for(self, count: int, *, timeout: float = 30.0) -> bool:
        """Whether `count` replays were redone (their success events stored) within `timeout` seconds."""
        with self._server.done:
            return self._server.done.wait_for(lambda: self._server.redone >= count, timeout=timeout)
