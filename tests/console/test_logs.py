import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pythonjsonlogger.json import JsonFormatter

from console.lib.logs import KeyValueFormatter, record_extra

ROOT = Path(__file__).resolve().parents[2]
FORMAT = "%(levelname)s %(name)s %(message)s"


def _record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("closeloop.test").makeRecord(
        "closeloop.test", logging.INFO, __file__, 1, "ingest.batch_stored", (), None, extra=extra
    )


def test_the_extra_fields_are_the_attributes_logging_does_not_set():
    assert record_extra(_record(source="erp", accepted=3)) == {"source": "erp", "accepted": 3}
    assert record_extra(_record()) == {}


def test_development_lines_show_extra_fields_as_key_value():
    line = KeyValueFormatter(FORMAT).format(_record(source="erp-gateway", accepted=3, rejected=0))
    assert line == "INFO closeloop.test ingest.batch_stored source=erp-gateway accepted=3 rejected=0"


def test_key_value_quotes_what_would_read_as_two_fields():
    line = KeyValueFormatter(FORMAT).format(_record(error="connection refused", rule="a=b", empty="", n=None, ok=True))
    assert line.endswith(' error="connection refused" rule="a=b" empty="" n=null ok=true')


def test_key_value_keeps_the_traceback_after_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("closeloop.test").makeRecord(
            "closeloop.test", logging.ERROR, __file__, 1, "periodic.job_failed", (), sys.exc_info(), extra={"job": "x"}
        )
    first, *rest = KeyValueFormatter(FORMAT).format(record).splitlines()
    assert first == "ERROR closeloop.test periodic.job_failed job=x"
    assert rest[-1] == "ValueError: boom"


def test_production_lines_are_json_with_the_extra_fields():
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    payload = json.loads(formatter.format(_record(source="erp-gateway", accepted=3)))
    assert payload["message"] == "ingest.batch_stored"
    assert payload["levelname"] == "INFO"
    assert (payload["source"], payload["accepted"]) == ("erp-gateway", 3)


EMIT = (
    "import django, logging; django.setup(); "
    "logging.getLogger('closeloop.ingest').info('ingest.batch_stored', extra={'source': 'erp', 'accepted': 2})"
)


def _emit(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_FORMAT", "DATABASE_URL"}}
    environment.update(DJANGO_SETTINGS_MODULE="console.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", EMIT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "expect_json"),
    [({"DEBUG": "0", "SECRET_KEY": "x" * 60}, True), ({"DEBUG": "1"}, False)],
    ids=["production", "development"],
)
def test_settings_pick_json_in_production_and_key_value_in_development(env, expect_json):
    line = _emit(**env)
    if expect_json:
        payload = json.loads(line)
        assert (payload["message"], payload["source"], payload["accepted"]) == ("ingest.batch_stored", "erp", 2)
    else:
        assert line.endswith("INFO closeloop.ingest ingest.batch_stored source=erp accepted=2")
