"""OpenAPI details of the ingest operations that drf-spectacular cannot infer from a hand-written request schema."""

from typing import Any

# The native and CloudEvents endpoints need a body (and its Content-Type); an empty OTLP export is a success.
BODY_REQUIRED = {"events_ingest", "cloudevents_ingest"}


def ingest_bodies_required(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: mark the request body of BODY_REQUIRED operations as required."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get("operationId") in BODY_REQUIRED:
                operation.setdefault("requestBody", {})["required"] = True
    return result
