"""HSTS only for real HTTPS: gunicorn (gunicorn.conf.py) trusts X-Forwarded-Proto only behind a TLS proxy."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthz_headers(tmp_path: Path, **env: str) -> dict[str, str]:
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "BEHIND_TLS_PROXY", "FORWARDED_ALLOW_IPS"}},
        "DEBUG": "0",
        "SECRET_KEY": "test-only-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "3600",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "console.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-Proto": "https"})
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own server
                    return dict(response.headers)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_plain_http_with_a_forged_forwarded_proto_gets_no_hsts(tmp_path):
    assert "Strict-Transport-Security" not in _healthz_headers(tmp_path)


def test_behind_a_tls_proxy_its_forwarded_proto_is_trusted(tmp_path):
    headers = _healthz_headers(tmp_path, BEHIND_TLS_PROXY="1")
    assert headers.get("Strict-Transport-Security", "").startswith("max-age=3600")


@pytest.mark.parametrize("flag", ["0", ""])
def test_the_config_trusts_no_forwarding_address_without_the_flag(flag, monkeypatch):
    monkeypatch.setenv("BEHIND_TLS_PROXY", flag)
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    assert namespace["forwarded_allow_ips"] == "" and namespace["secure_scheme_headers"] == {}
