"""Settings for Monitor, read from the environment (see README, "Configuration").

Every variable is optional; a malformed value stops start-up with a message that names
the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MONITOR_VAR_DIR") or BASE_DIR / "var")

env = environ.Env()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None


def _url(name: str, default: str, schemes: set[str]) -> str:
    raw = os.environ.get(name, "").strip() or default
    scheme = urlsplit(raw).scheme
    if scheme not in schemes or "://" not in raw:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}; got {raw!r}")
    return raw


DEBUG = _bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()
# Previous keys, newest first, comma-separated: links signed with them keep working, and
# readers erased under them stay suppressed (subscriptions.hashing). Keep a key here for
# as long as `manage.py check --database default` says erased readers depend on it.
SECRET_KEY_FALLBACKS = [
    k.strip() for k in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
]

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]

SITE_URL = _url("SITE_URL", "http://127.0.0.1:8000", {"http", "https"}).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "anymail",
    "axes",
    "import_export",
    "csp",
    "monitor_site",
    "issues",
    "subscriptions",
    "delivery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # before WhiteNoise, so that static files carry the policy as well
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # turns django-ratelimit's Ratelimited into RATELIMIT_VIEW (429) instead of a 403
    "django_ratelimit.middleware.RatelimitMiddleware",
    # the database, Redis or the broker not answering: 503 and a page, not a 500
    "monitor_site.unavailable.ServiceUnavailableMiddleware",
    # last, so that it sees the outcome of authentication
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "monitor_site.urls"
WSGI_APPLICATION = "monitor_site.wsgi.application"

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
                "monitor_site.outbox.context",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
_database_url = _url(
    "DATABASE_URL", f"sqlite:///{VAR_DIR / 'monitor.sqlite3'}", {"postgres", "postgresql", "sqlite"}
)
try:
    DATABASES = {"default": env.db_url_config(_database_url)}
except Exception as exc:  # django-environ raises several kinds for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A web process and worker processes write at once: wait for the lock instead of
    # failing, and let readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by tests see the test data.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("MONITOR_TEST_DB") or str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The office's zone: schedules are entered and dates shown in it; the database keeps UTC.
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "").strip() or "America/New_York"
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"DJANGO_TIME_ZONE must be an IANA time zone such as America/New_York; got {TIME_ZONE!r}"
    ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# Security: production answers only over https behind a proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = _bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = [SITE_URL]

# Content-Security-Policy (django-csp) on every response, the admin's included: scripts,
# styles, images, fonts and fetches only from this site, and no inline script or style.
# Every script is a static file (Django's admin passes its data in data- attributes and
# JSON blocks, which are not run); a template that needs an inline script gives it
# nonce="{{ request.csp_nonce }}", and only then does the header carry a nonce. Views
# that show other content change it with django-csp's decorators: the archive's issue
# page lets in the images articles link (issues.markdown.IMAGE_SOURCES), the email and
# article previews are sandboxed documents with policies of their own
# (monitor_site.sandboxed), and django-import-export's pages let in their few inline
# attributes by hash (subscriptions.admin.IMPORT_EXPORT_POLICY).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # Stylesheets are static files; a style attribute or element is refused, so that
        # injected markup cannot restyle a page into something else.
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        # As X_FRAME_OPTIONS = "DENY"; the two preview documents framed by the admin
        # say 'self' themselves.
        "frame-ancestors": [NONE],
    }
}

# Email: an outbox of .eml files by default; plain SMTP with EMAIL_URL; an ESP through
# django-anymail with ANYMAIL_ESP and its ANYMAIL_* settings.
OUTBOX_DIR = VAR_DIR / "outbox"
ANYMAIL_ESP = os.environ.get("ANYMAIL_ESP", "").strip()
ANYMAIL: dict[str, object] = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and key not in {"ANYMAIL_ESP", "ANYMAIL_WEBHOOK_SECRET"}
}
_webhook_secret = os.environ.get("ANYMAIL_WEBHOOK_SECRET", "").strip()
if _webhook_secret:
    if ":" not in _webhook_secret:
        raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be user:password")
    ANYMAIL["WEBHOOK_SECRET"] = _webhook_secret
if ANYMAIL_ESP:
    if not ANYMAIL_ESP.replace("_", "").isalnum():
        raise ImproperlyConfigured(f"ANYMAIL_ESP is not an ESP name: {ANYMAIL_ESP!r}")
    EMAIL_BACKEND = f"anymail.backends.{ANYMAIL_ESP.lower()}.EmailBackend"
elif os.environ.get("EMAIL_URL", "").strip():
    _email_url = _url("EMAIL_URL", "", {"smtp", "smtps", "submission"})
    try:
        globals().update(env.email_url("EMAIL_URL"))
    except Exception as exc:
        raise ImproperlyConfigured(f"EMAIL_URL is not a usable SMTP URL: {exc}") from None
    EMAIL_TIMEOUT = 30
else:
    EMAIL_BACKEND = "monitor_site.outbox.OutboxBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "") or "monitor@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: Redis with CELERY_BROKER_URL, else the filesystem transport under var/.
CELERY_BROKER_URL = _url(
    "CELERY_BROKER_URL", "filesystem://", {"redis", "rediss", "filesystem", "memory", "amqp"}
)
BROKER_DIR = Path(os.environ.get("MONITOR_BROKER_DIR") or VAR_DIR / "broker")
if CELERY_BROKER_URL.startswith("filesystem://"):
    (BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than any countdown we use, so that a delayed task is not redelivered early;
    # lost work is found again from the database by the sweeper, not by the broker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}

# The default cache holds the rate-limit counters and the worker heartbeat, shared by
# every process. Redis (MONITOR_CACHE_URL, else the broker's Redis server and database):
# its INCR is atomic, so concurrent requests never pass a limit. The keys carry a
# prefix beside Celery's own; nothing may clear that database (FLUSHDB would drop the
# queues). Without Redis, the database cache: shared too, but its incr is a read then
# a write, so simultaneous requests can pass a limit — enough for one development
# server, not for production.
_cache_url = os.environ.get("MONITOR_CACHE_URL", "").strip()
if _cache_url:
    _cache_url = _url("MONITOR_CACHE_URL", "", {"redis", "rediss"})
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _cache_url = CELERY_BROKER_URL
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _cache_url,
        "KEY_PREFIX": "monitor",
    }
    if _cache_url
    else {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "monitor_cache",
    },
    # Rendered archive pages, per web process: cheap to lose, never shared state.
    "pages": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "monitor-pages",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}

CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Every queue the project uses: `celery -A monitor_site worker` with no -Q consumes all
# of them; `-Q send` and `-Q default` split the work between workers. Each is bound with
# its own routing key (one declared without a key is bound with the default queue's).
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default", routing_key="default"), Queue("send", routing_key="send"))
CELERY_TASK_ROUTES = {"delivery.tasks.send_chunk": {"queue": "send"}}
# RabbitMQ orders a queue's messages by priority only if the queue was declared with
# x-max-priority (delivery.dispatch.priorities); a queue declared before without it
# must be deleted once (RabbitMQ refuses to declare it again with other arguments).
if CELERY_BROKER_URL.startswith("amqp"):
    CELERY_TASK_QUEUE_MAX_PRIORITY = 9
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fix-up closes the database connection around every task unless told
# to reuse it; a send task would then pay for a new PostgreSQL backend (connection,
# cold catalog caches) each time. monitor_site.celery checks it between tasks instead,
# as Django does between requests (CONN_MAX_AGE, CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Delivery tuning. A claimed chunk must finish (or renew its lease) within the lease;
# the sweeper runs every DELIVERY_SWEEP_SECONDS and hands out again whatever the broker
# lost, so lost work is found within lease + sweep interval.
DELIVERY_CHUNK_SIZE = _int("MONITOR_DELIVERY_CHUNK_SIZE", 2000)
DELIVERY_WINDOW = _int("MONITOR_DELIVERY_WINDOW", 8)  # chunk tasks in the queue per issue
DELIVERY_LEASE_SECONDS = _int("MONITOR_DELIVERY_LEASE_SECONDS", 20)
DELIVERY_SWEEP_SECONDS = _int("MONITOR_DELIVERY_SWEEP_SECONDS", 5)
DELIVERY_RETRY_BASE_SECONDS = _int("MONITOR_DELIVERY_RETRY_BASE_SECONDS", 30)
DELIVERY_RETRY_MAX_SECONDS = 20 * 60
# Connections (SMTP) and API calls (ESP) a worker process keeps in flight at once: a
# relay takes milliseconds to accept a message and an ESP hundreds to answer a call,
# so a process waits unless several go at once. Each is one SMTP connection to the
# relay, or one HTTP request to the ESP, per worker process.
# A relay connection carries about 200 messages a second (5 ms each); 32 let two worker
# processes keep up with what two cores render.
DELIVERY_SMTP_CONNECTIONS = _int("MONITOR_DELIVERY_SMTP_CONNECTIONS", 32)
DELIVERY_ESP_CALLS = _int("MONITOR_DELIVERY_ESP_CALLS", 4)
DELIVERY_MAX_ATTEMPTS = 10  # 30 s doubling to 20 min: about an hour and a half in all
# A running send with work due and no progress this long is reported stalled (/healthz,
# the admin page, send_issue --wait).
DELIVERY_STALL_SECONDS = _int("MONITOR_DELIVERY_STALL_SECONDS", 300)
if DELIVERY_STALL_SECONDS < 1:
    raise ImproperlyConfigured(
        f"MONITOR_DELIVERY_STALL_SECONDS must be at least 1; got {DELIVERY_STALL_SECONDS}"
    )
# Retention of readers' data (delivery/retention.py, daily): unconfirmed requests and
# the people who made them, the IP addresses of consent records and contact messages,
# each open and click event (kept afterwards as per-issue counts) and the record of each
# message read from the bounce mailbox, in days.
RETAIN_UNCONFIRMED_DAYS = _int("MONITOR_RETAIN_UNCONFIRMED_DAYS", 30)
RETAIN_IP_DAYS = _int("MONITOR_RETAIN_IP_DAYS", 365)
RETAIN_EVENTS_DAYS = _int("MONITOR_RETAIN_EVENTS_DAYS", 395)
for _name, _days in (
    ("MONITOR_RETAIN_UNCONFIRMED_DAYS", RETAIN_UNCONFIRMED_DAYS),
    ("MONITOR_RETAIN_IP_DAYS", RETAIN_IP_DAYS),
    ("MONITOR_RETAIN_EVENTS_DAYS", RETAIN_EVENTS_DAYS),
):
    if _days < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 (days); got {_days}")
# Lets a monitor read the details of /healthz (Authorization: Bearer <token>); unset,
# only logged-in staff see them.
HEALTHZ_TOKEN = os.environ.get("MONITOR_HEALTHZ_TOKEN", "").strip()

# Bounces without an ESP (delivery/verp.py, delivery/bounces.py): the domain of the VERP
# envelope senders on the SMTP path (unset: the envelope sender is the From address), the
# IMAP mailbox beat polls for delivery reports, and how often.
BOUNCE_DOMAIN = os.environ.get("MONITOR_BOUNCE_DOMAIN", "").strip().lower().rstrip(".")
if BOUNCE_DOMAIN and not re.fullmatch(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}", BOUNCE_DOMAIN
):
    raise ImproperlyConfigured(f"MONITOR_BOUNCE_DOMAIN is not a domain name: {BOUNCE_DOMAIN!r}")
BOUNCE_IMAP_URL = (
    _url("MONITOR_BOUNCE_IMAP_URL", "", {"imap", "imaps"})
    if os.environ.get("MONITOR_BOUNCE_IMAP_URL", "").strip()
    else ""
)
BOUNCE_POLL_SECONDS = _int("MONITOR_BOUNCE_POLL_SECONDS", 180)
if BOUNCE_POLL_SECONDS < 10:
    raise ImproperlyConfigured(
        f"MONITOR_BOUNCE_POLL_SECONDS must be at least 10; got {BOUNCE_POLL_SECONDS}"
    )

CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "heartbeat": {"task": "monitor_site.tasks.heartbeat", "schedule": 60.0},
    "delivery-sweep": {"task": "delivery.tasks.sweep", "schedule": float(DELIVERY_SWEEP_SECONDS)},
    # reminders are due by the day; a quarter of an hour late is on time
    "invitation-reminders": {
        "task": "subscriptions.tasks.invitation_reminders",
        "schedule": 15 * 60.0,
    },
    # readers' data past its time (the retention settings above), once a day
    "retention": {"task": "delivery.tasks.retention", "schedule": crontab(hour=3, minute=30)},
}
if BOUNCE_IMAP_URL:
    # delivery reports in the bounce mailbox, read every few minutes
    CELERY_BEAT_SCHEDULE["bounces-poll"] = {
        "task": "delivery.tasks.bounces_poll",
        "schedule": float(BOUNCE_POLL_SECONDS),
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # fpdf2 subsets its fonts with fontTools, which narrates every table at INFO
        "fontTools": {"level": "WARNING"},
        # flufl.bounce names every detector it tries, for every message
        "flufl.bounce": {"level": "WARNING"},
    },
}

# The client address behind proxies: how many X-Forwarded-For entries, counted from the
# right, our own proxies wrote (monitor_site.clientip). 0: REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = _int("MONITOR_TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(
        f"MONITOR_TRUSTED_PROXY_COUNT must be 0 or more; got {TRUSTED_PROXY_COUNT}"
    )

# django-axes: lock an admin login after repeated failures of one username from one
# address. The pair, not either alone: a stranger elsewhere cannot lock out `admin`.
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "monitor_site.clientip.client_ip"

# django-import-export lets every staff user import and export unless told which of the
# model's permissions each needs: the legacy-list import changes subscribers, the export
# reads subscriptions.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

# django-ratelimit: counts in the default cache (above), per client address.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "monitor_site.views.ratelimited"
RATELIMIT_IP_META_KEY = "monitor_site.clientip.ratelimit_ip"
# Archive searches per client address (django-ratelimit's "count/period", s m h d).
SEARCH_RATE = os.environ.get("MONITOR_SEARCH_RATE", "").strip() or "30/m"
if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", SEARCH_RATE):
    raise ImproperlyConfigured(
        f"MONITOR_SEARCH_RATE must look like 30/m (a count per s, m, h or d); got {SEARCH_RATE!r}"
    )

LOGIN_URL = "admin:login"
AXES_VERBOSE = False
