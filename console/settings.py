"""Closeloop settings: one plain module, everything that differs between machines comes from the environment."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


def database_from_url(url: str) -> dict:
    """Translate a DATABASE_URL (postgres://, postgresql://, sqlite:///) into Django's DATABASES entry."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        pooled = env_bool("DATABASE_POOL", True)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # Django's psycopg 3 pool keeps connections warm without a separate pooler; off by env for pgbouncer.
            # A request waits for a free connection a few seconds at most (psycopg's default is 30 s), then answers
            # 503 with Retry-After: a sender under back-pressure retries instead of timing out with stored data.
            # Without it (DATABASE_POOL=0, PgBouncer in transaction mode in front), consecutive transactions may run
            # on different server sessions: nothing may outlive a transaction. Prepared statements are session state
            # (PgBouncer tracks them only from 1.21, with max_prepared_statements), so psycopg must never prepare.
            # On our own pool a statement prepares when its caller asks (`execute(..., prepare=True)`, the ingest
            # statement): Django passes psycopg prepare_threshold=None unless told, which refuses even those; the
            # threshold is out of reach, so nothing else is prepared behind anyone's back (Django's client-side
            # cursors never prepare).
            "OPTIONS": {"pool": {"timeout": env_int("DATABASE_POOL_TIMEOUT", 3)}, "prepare_threshold": 2**31 - 1}
            if pooled
            else {"prepare_threshold": None},
            # Django's .iterator() opens a WITH HOLD cursor outside a transaction, which survives the transaction
            # and so is another session's cursor by the next fetch behind a transaction pooler.
            "DISABLE_SERVER_SIDE_CURSORS": not pooled,
            "CONN_HEALTH_CHECKS": True,
            "TEST": {"NAME": options.get("test_name") or None},
        }
    if parts.scheme == "sqlite":
        return sqlite_database(
            Path(unquote(parts.path)) if parts.path not in {"", "/"} else BASE_DIR / "closeloop.sqlite3"
        )
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported (use postgres:// or sqlite:///)")


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # WAL + IMMEDIATE avoid "database is locked" when the web process and in-process jobs write together.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (for local development, set DEBUG=1)")
    SECRET_KEY = "django-insecure-closeloop-development-only"  # noqa: S105 - only ever used with DEBUG on

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "console",
    "transactions",
    "exceptions",
    "slas",
]

MIDDLEWARE = [
    "console.lib.telemetry.RequestSpanMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a lockout noticed during the request into the 429 lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL else sqlite_database(BASE_DIR / "closeloop.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2 first, as Django recommends: memory-hard, and a sign-in verifies in about a third of PBKDF2's time at
# Django's default work factors. Older PBKDF2 hashes still verify and are rehashed at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The lockout backend goes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "console.lib.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# The day boundaries of dashboard rollups ("breaches on 29 March" means that local day, 23 hours long with DST).
DASHBOARD_TIME_ZONE = os.environ.get("DASHBOARD_TIME_ZONE", TIME_ZONE)
# An event received this long after it occurred counts as a late arrival on the integration map (a batch or a
# retrying queue delivering yesterday's records).
INTERFACE_LATE_AFTER_SECONDS = env_int("INTERFACE_LATE_AFTER_SECONDS", 15 * 60)
# A new interface (first traffic between two systems) raises a notice, except while the map is still being learnt:
# for this many days after the installation first stored traffic every interface is new, so none is news (a weekly
# batch is seen once within a week).
INTERFACE_NEW_LEARNING_DAYS = env_int("INTERFACE_NEW_LEARNING_DAYS", 7)
# More new interfaces than this within a day are a wave (a part of the estate instrumented for the first time, a new
# iPaaS): one notice for all of them, not one per interface in every owner's queue.
INTERFACE_NEW_WAVE = env_int("INTERFACE_NEW_WAVE", 10)

STATIC_URL = "static/"
# Bulk evidence packages (auditors' samples) are built by workers into files here; web and workers must share it.
EVIDENCE_DIR = Path(os.environ.get("EVIDENCE_DIR", BASE_DIR / "var" / "evidence"))
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# plotly.js is vendored as its "basic" bundle (bar, scatter, pie: every trace the console draws), 1.2 MB against the
# plotly package's 4.8 MB full bundle, of the same plotly.js version as the package (tests/console/test_static_assets).
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security: strict by default once DEBUG is off; TLS-related switches can be relaxed behind a TLS-terminating proxy.
# Behind a TLS-terminating proxy, its X-Forwarded-Proto and X-Forwarded-For are trusted (gunicorn.conf.py, too).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: pages run only the console's own static files. No inline script or style (charts carry
# their figure as JSON data that static/js/charts.js draws), no CDN, no eval; data: images are Bootstrap's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Shared cache: rate limits (DRF throttles) and login lockouts (django-axes) count in it, so several web processes
# count together. Redis from CACHE_URL, else the Redis broker; local memory only when neither is set, which is the
# single-process quick start. Closeloop never clears this cache: with the broker's database, a clear would drop
# queued tasks.
_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "") or (
    _BROKER_URL if _BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "console.lib.cache.FailOpenRedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "closeloop",
            # A slow or unreachable cache must not hold a request: fail fast rather than wait.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, not {CACHE_URL.split(':', 1)[0]!r}")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "closeloop"}}
    # axes warns that a per-process cache undercounts across processes; the quick start is one process.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures for one account or from one address, that
# account or address is refused for LOGIN_LOCKOUT_MINUTES (a 429 page), even with the right password. Bad API and
# ingest tokens count the same way (console/lib/lockout.py). State lives in the shared cache above.
AXES_HANDLER = "console.lib.lockout.LockoutCacheHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
# A successful login does not wipe the counts: it would also reset its address's count, so a guesser holding one
# account of their own could spray passwords at others from one address forever. Counts expire with the lockout.
AXES_RESET_ON_SUCCESS = False
# A locked-out client that keeps trying does not extend its own lockout: it ends LOGIN_LOCKOUT_MINUTES after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "console.lib.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "console.lib.lockout.lockout_response"
AXES_VERBOSE = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.lib.lockout.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["console.lib.api.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "console.lib.api.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.lib.api.exception_handler",
    # The stock parsers, refusing NUL in any value with a 400 (PostgreSQL cannot hold it). Ingest reads its own bodies.
    "DEFAULT_PARSER_CLASSES": [
        "console.lib.parsers.JSONParser",
        "console.lib.parsers.FormParser",
        "console.lib.parsers.MultiPartParser",
    ],
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_TTL_DAYS", 90)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Closeloop API",
    "DESCRIPTION": "Integration observability and exception management for finance.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # A catalogue entry's criticality and a reconciliation rule's severity are the same four levels; one name for the
    # set (the one published first) instead of a warning.
    # A reconciliation rule's kind keeps its own name, so that the older `kind` enums keep theirs.
    "ENUM_NAME_OVERRIDES": {
        "CriticalityEnum": "transactions.choices.Criticality",
        "KindEnum": "exceptions.choices.ActivityKind",
        "ReconciliationKindEnum": "exceptions.choices.ReconciliationKind",
        "ReconciliationStatusEnum": "exceptions.choices.ReconciliationStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "console.lib.api.schema_common_answers",
        "transactions.api.schema.ingest_bodies_required",
    ],
}

# Celery: without a broker every task runs in-process (the quick start); with one, a real worker does the work.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Reaching the broker is bounded (seconds): an ingest request enqueues after its commit and must answer quickly
# (the sweep catches up on what it could not enqueue); workers simply reconnect. Redis needs it as a socket option.
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("BROKER_CONNECT_TIMEOUT", 1)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT}
CELERY_TIMEZONE = "UTC"
# Deployments (or a benchmark beside the test suite) sharing one Redis keep their tasks apart by queue name; the web
# processes, workers and beat of one deployment must all use the same name.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
# Every periodic job in one table: Celery beat reads it in production (exactly one beat process), `serve_demo` runs
# it in-process. Each entry is a crontab with an expiry shorter than its period, so a backlog after an outage does
# not pile up runs.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "audit-chain-check": {
        "task": "console.tasks.audit_chain_check",
        "schedule": crontab(minute=17),
        "options": {"expires": 50 * 60},
    },
    "sweep-uncorrelated-batches": {
        "task": "transactions.tasks.sweep_uncorrelated_batches",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "mark-stalled-transactions": {
        "task": "transactions.tasks.mark_stalled_transactions",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "sweep-unclassified-failures": {
        "task": "exceptions.tasks.sweep_unclassified_failures",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "escalate-cases": {
        "task": "exceptions.tasks.escalate_cases",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "confirm-replays": {
        "task": "exceptions.tasks.confirm_replays",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "sweep-recovered-cases": {
        "task": "exceptions.tasks.sweep_recovered_cases",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "sweep-replays": {
        "task": "exceptions.tasks.sweep_replays",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "evaluate-sla-clocks": {
        "task": "slas.tasks.evaluate_live_clocks",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "sweep-sla-transactions": {
        "task": "slas.tasks.sweep_recent_transactions",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "refresh-dashboard-rollups": {
        "task": "slas.tasks.refresh_dashboard_rollups",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "sweep-reconciliation": {
        "task": "exceptions.tasks.sweep_reconciliation",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    "refresh-reconciliation-rollups": {
        "task": "exceptions.tasks.refresh_reconciliation_rollups",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "raise-interface-silence": {
        "task": "exceptions.tasks.raise_interface_silence",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    "raise-new-interface-notices": {
        "task": "exceptions.tasks.raise_new_interface_notices",
        "schedule": crontab(minute="*/15"),
        "options": {"expires": 14 * 60},
    },
    "refresh-interface-rollups": {
        "task": "transactions.tasks.refresh_interface_rollups",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "evaluate-volume-monitors": {
        "task": "slas.tasks.evaluate_volume_monitors",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "sweep-stalled-transactions": {
        "task": "slas.tasks.sweep_stalled_transactions",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "decide-evidence-checks": {
        "task": "slas.tasks.decide_evidence_checks",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "maintain-event-partitions": {
        "task": "transactions.tasks.maintain_event_partitions",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    "apply-ingest-retention": {
        "task": "transactions.tasks.apply_ingest_retention",
        "schedule": crontab(minute=30, hour=2),
        "options": {"expires": 6 * 3600},
    },
}

# Logs carry their facts in `extra` fields: JSON lines for log shippers in production, key=value for people reading a
# terminal in development (LOG_FORMAT=json|keyvalue overrides the choice).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "keyvalue" if DEBUG else "json")
if LOG_FORMAT not in {"json", "keyvalue"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or keyvalue, not {LOG_FORMAT!r}")
LOG_LINE = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": LOG_LINE},
        "keyvalue": {"()": "console.lib.logs.KeyValueFormatter", "fmt": LOG_LINE},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery logs every task's success at INFO with its arguments and result as an extra field, which the
        # formatters now print: whole id lists per task. Failures (ERROR) still show.
        "celery.app.trace": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "closeloop@localhost")

# Ingest: the OTLP specification recommends accepting bodies up to 64 MiB; the limit also bounds gzip inflation.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 64 * 1024 * 1024)
INGEST_THROTTLE_RATE = os.environ.get("INGEST_THROTTLE_RATE", "1200/min")
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 400)
