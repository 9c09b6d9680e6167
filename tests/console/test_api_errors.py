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


STORAGE_FAULTS = [
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("connection failed: timeout expired"),
    OperationalError("couldn't get a connection after 3.00 sec"),
]


@pytest.mark.parametrize("error", STORAGE_FAULTS)
def test_a_page_whose_storage_fails_answers_503_with_retry_after_not_500(client, role_user, monkeypatch, error):
    client.force_login(role_user("finance_ops"))

    def unavailable(*args, **kwargs):
        raise error

    monkeypatch.setattr("console.views.home.queue_summaries", unavailable)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0 and response["Cache-Control"] == "no-store"
    assert b"temporarily unavailable" in response.content


def test_a_page_that_fails_for_another_reason_is_still_a_500(client, role_user, monkeypatch):
    client.force_login(role_user("finance_ops"))

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("console.views.home.queue_summaries", broken)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 500 and "Retry-After" not in response
