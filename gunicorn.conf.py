"""gunicorn settings that security depends on; gunicorn reads this file from the working directory by itself.

gunicorn trusts X-Forwarded-Proto from 127.0.0.1 by default, so a plain-HTTP request carrying
`X-Forwarded-Proto: https` would be taken for HTTPS (and answered with HSTS). Forwarded headers are trusted only
behind a TLS-terminating proxy (BEHIND_TLS_PROXY=1), from the addresses in FORWARDED_ALLOW_IPS (default: this host).
"""

import os

if os.environ.get("BEHIND_TLS_PROXY", "").strip().lower() in {"1", "true", "yes", "on"}:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
else:
    forwarded_allow_ips = ""
    secure_scheme_headers: dict[str, str] = {}

# Worker layout: threaded workers (gthread), WEB_CONCURRENCY processes (gunicorn's own variable) of GUNICORN_THREADS
# request threads each. `make bench-ingest` serves with these settings.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
