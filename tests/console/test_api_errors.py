import psycopg
import pytest
from django.db import OperationalError

from console.lib.api import exception_handler


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.OperationalError("sending copy data failed: server closed the connection unexpectedly"),
        psycopg.InterfaceError("the connection is closed"),
        OperationalError("canceling statement due to lock timeout"),
    ],
)
def test_storage_faults_answer_503_with_retry_after_in_every_api(error):
    response = exception_handler(error, {})
    assert response is not None and response.status_code == 503
    assert int(response["Retry-After"]) > 0
