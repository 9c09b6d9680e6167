"""Guessed credentials are throttled: passwords, API tokens and ingest tokens, per account and per address."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.urls import reverse

from console.lib.audit import AuditEntry, audit_verify
from tests.factories import PASSWORD
from transactions.services import ingest_source_create, ingest_token_create

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def login(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def lockouts() -> list[tuple[str, str]]:
    return list(AuditEntry.objects.filter(action="auth.locked_out").values_list("object_type", "object_id"))


@pytest.mark.django_db
def test_an_account_is_locked_after_the_failure_limit_even_for_the_right_password_and_audited_once(client, role_user):
    role_user("finance_ops", username="olga")
    for _ in range(LIMIT):
        assert login(client, "olga", "wrong").status_code in {200, 429}
    # The right password from another address is refused too: the account itself is locked.
    response = login(client, "olga", PASSWORD, address="10.9.9.9")
    assert response.status_code == 429 and int(response["Retry-After"]) == 15 * 60
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session
    for _ in range(3):
        login(client, "olga", "wrong")
    # One entry per locked account and address, not one per refused attempt.
    entries = AuditEntry.objects.filter(action="auth.locked_out", object_id="olga")
    assert sorted(entry.after["ip"] for entry in entries) == ["10.0.0.1", "10.9.9.9"]
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_address_is_locked_after_failures_across_accounts(client, role_user):
    role_user("finance_ops", username="olga")
    for name in ("ann", "bob", "cyd"):
        login(client, name, "guess", address="10.0.0.7")
    assert login(client, "olga", PASSWORD, address="10.0.0.7").status_code == 429
    # The same account from an address with a clean record still works.
    assert login(client, "olga", PASSWORD, address="10.0.0.8").status_code == 302


@pytest.mark.django_db
def test_below_the_limit_the_right_password_logs_in(client, role_user):
    role_user("finance_ops", username="olga")
    for _ in range(LIMIT - 1):
        login(client, "olga", "wrong")
    assert login(client, "olga", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_api_token_with_non_ascii_bytes_answers_401(client):
    response = client.get("/api/v1/me/", headers={"Authorization": "Token \xe9\xe9"})
    assert response.status_code == 401
    response = client.get("/api/v1/me/", headers={"Authorization": "Token abc\x01def"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_wrong_api_tokens_lock_the_address_out_even_for_a_valid_token(client, role_user, capsys):
    role_user("compliance", username="carla")
    call_command("create_api_token", "--user", "carla")
    token = capsys.readouterr().out.strip()
    for attempt in range(LIMIT):
        response = client.get("/api/v1/me/", headers={"Authorization": f"Token wrong{attempt}"}, REMOTE_ADDR="10.0.0.5")
        assert response.status_code == 401
    response = client.get("/api/v1/me/", headers={"Authorization": f"Token {token}"}, REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 429 and int(response["Retry-After"]) == 15 * 60
    assert (
        client.get("/api/v1/me/", headers={"Authorization": f"Token {token}"}, REMOTE_ADDR="10.0.0.6").status_code
        == 200
    )
    assert [kind for kind, _ in lockouts()] == ["auth.token"]


@pytest.mark.django_db
def test_guesses_at_one_api_token_from_many_addresses_lock_that_token(client, role_user, capsys):
    role_user("compliance", username="carla")
    call_command("create_api_token", "--user", "carla")
    token = capsys.readouterr().out.strip()
    for attempt in range(LIMIT):
        forged = token[:-4] + f"{attempt:04d}"  # the right public part, a wrong secret
        response = client.get(
            "/api/v1/me/", headers={"Authorization": f"Token {forged}"}, REMOTE_ADDR=f"10.1.0.{attempt}"
        )
        assert response.status_code == 401
    assert (
        client.get("/api/v1/me/", headers={"Authorization": f"Token {token}"}, REMOTE_ADDR="10.2.0.1").status_code
        == 429
    )


@pytest.mark.django_db
def test_wrong_ingest_tokens_lock_the_address_out_and_non_ascii_is_401(client):
    source = ingest_source_create(name="erp-gateway", actor="system:test")
    token = ingest_token_create(source=source, actor="system:test")[1]

    def send(bearer: str, address: str = "10.0.0.3"):
        return client.post(
            "/api/v1/events",
            b"[]",
            content_type="application/json",
            headers={"Authorization": f"Bearer {bearer}"},
            REMOTE_ADDR=address,
        )

    assert send("\xe9\xe9").status_code == 401
    for attempt in range(LIMIT - 1):
        assert send(f"cl_wrong{attempt}").status_code == 401
    response = send(token)
    assert response.status_code == 429 and int(response["Retry-After"]) == 15 * 60
    assert send(token, address="10.0.0.4").status_code == 200
    assert [kind for kind, _ in lockouts()] == ["auth.token"]


@pytest.mark.django_db
def test_a_clean_sender_is_not_asked_about_again_for_a_second_but_a_lockout_elsewhere_takes_effect(client, monkeypatch):
    from axes.handlers.proxy import AxesProxyHandler
    from axes.helpers import get_client_cache_keys
    from django.test import RequestFactory

    from console.lib import lockout

    source = ingest_source_create(name="webhook-sender", actor="system:test")
    token = ingest_token_create(source=source, actor="system:test")[1]
    handler = AxesProxyHandler.get_implementation()
    reads = []
    real_get_many = handler.cache.get_many
    monkeypatch.setattr(handler.cache, "get_many", lambda keys: reads.append(keys) or real_get_many(keys))
    clock = [1000.0]
    monkeypatch.setattr(lockout.time, "monotonic", lambda: clock[0])

    def send(address: str = "10.0.5.1"):
        return client.post(
            "/api/v1/events",
            b"[]",
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
            REMOTE_ADDR=address,
        )

    assert send().status_code == 200 and send().status_code == 200
    assert len(reads) == 1  # the second request within the second took the remembered clean record
    # Another process counts this address to the limit (written straight to the shared cache, as it would be).
    request = RequestFactory().post("/api/v1/events", REMOTE_ADDR="10.0.5.1")
    request.axes_ip_address = "10.0.5.1"
    for key in get_client_cache_keys(request, {"username": "someone-else"}):
        handler.cache.set(key, LIMIT, 600)
    clock[0] += lockout.LockoutCacheHandler.CLEAN_FOR_SECONDS + 0.01
    assert send().status_code == 429
    # A failure counted in this process forgets every clean record at once.
    assert send(address="10.0.5.2").status_code == 200
    reads.clear()
    client.post(
        "/api/v1/events",
        b"[]",
        content_type="application/json",
        headers={"Authorization": "Bearer cl_wrong"},
        REMOTE_ADDR="10.0.5.3",
    )
    assert send(address="10.0.5.2").status_code == 200
    assert len(reads) == 2  # the wrong token's own check, then 10.0.5.2 asked again


def _redis_url() -> str | None:
    url = os.environ.get("CACHE_URL") or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/12"
    if not url.startswith("redis://"):
        return None
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


FAIL_FROM_ANOTHER_PROCESS = """
import django
django.setup()
from django.conf import settings
from django.test import RequestFactory
from axes.handlers.proxy import AxesProxyHandler
settings.CACHES["default"]["KEY_PREFIX"] = sys.argv[1]
for _ in range(int(sys.argv[2])):
    request = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.3.0.1")
    AxesProxyHandler.user_login_failed(sender="test", credentials={"username": "olga"}, request=request)
"""


@pytest.mark.django_db
def test_processes_count_failures_together_in_the_shared_cache(client, role_user, settings):
    """Several web processes share one count: failures in another process plus one here reach the limit."""
    url = _redis_url()
    if url is None:
        pytest.skip("needs Redis at CACHE_URL, CELERY_BROKER_URL or 127.0.0.1:6379")
    from axes.handlers.proxy import AxesProxyHandler

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        }
    }
    AxesProxyHandler.get_implementation(force=True)
    role_user("finance_ops", username="olga")
    env = {**os.environ, "DEBUG": "1", "CACHE_URL": url, "DJANGO_SETTINGS_MODULE": "console.settings"}
    code = "import sys\n" + FAIL_FROM_ANOTHER_PROCESS
    subprocess.run(
        [sys.executable, "-c", code, settings.CACHES["default"]["KEY_PREFIX"], str(LIMIT - 1)],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    login(client, "olga", "wrong", address="10.3.0.2")
    assert login(client, "olga", PASSWORD, address="10.3.0.9").status_code == 429


def _settings_in_a_fresh_process(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "CELERY_BROKER_URL"}}
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "console.settings", **env},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()


def test_the_cache_is_redis_whenever_redis_is_configured_and_local_memory_only_without():
    assert _settings_in_a_fresh_process() == "django.core.cache.backends.locmem.LocMemCache"
    redis_backend = "console.lib.cache.FailOpenRedisCache"
    assert _settings_in_a_fresh_process(CELERY_BROKER_URL="redis://127.0.0.1:6379/3") == redis_backend
    assert _settings_in_a_fresh_process(CACHE_URL="redis://127.0.0.1:6379/4") == redis_backend


@pytest.mark.django_db
def test_a_successful_login_does_not_reset_the_address_count(client, role_user):
    """Else a guesser with an account of their own could spray passwords at other accounts from one address."""
    role_user("finance_ops", username="mallory")
    role_user("finance_ops", username="olga")
    login(client, "ann", "guess", address="10.4.0.1")
    login(client, "bob", "guess", address="10.4.0.1")
    assert login(client, "mallory", PASSWORD, address="10.4.0.1").status_code == 302
    client.logout()
    login(client, "cyd", "guess", address="10.4.0.1")
    assert login(client, "olga", PASSWORD, address="10.4.0.1").status_code == 429


def test_an_unreachable_cache_fails_open_rather_than_answering_500():
    from console.lib.cache import FailOpenRedisCache

    cache = FailOpenRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert cache.get("k", "default") == "default" and cache.get_many(["k"]) == {}
    cache.set("k", 1)  # dropped, not raised
    assert cache.add("k", 1) is False and cache.incr("k") == 1 and cache.delete("k") is False
