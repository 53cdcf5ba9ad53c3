"""Settings, read once from the environment (see the configuration table in the README)."""

import base64
import hashlib
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from notifyproject.cluster import CALLBACKS_CLUSTER_ENV
from notifyproject.env import (
    env_bool,
    env_credentials,
    env_database,
    env_fernet_keys,
    env_float,
    env_int,
    env_list,
    env_optional,
    env_proxy_header,
    env_rate,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# The upper bound of durations read from the environment: larger ones are typing mistakes, and
# some would overflow a timedelta.
DAY = 24 * 60 * 60

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

# --- HTTPS, for running behind a TLS proxy (all off by default; docs/security.md) --------------
SECURE_PROXY_SSL_HEADER = env_proxy_header("SECURE_PROXY_SSL_HEADER")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, maximum=2 * 365 * DAY)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)

INSTALLED_APPS = [
    # Before the admin, whose templates (pagination) it overrides; the admin's site is the
    # console's (its front page).
    "console",
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_q: its `qcluster` command replaces django-q's (notifyproject/cluster.py).
    "notifyproject",
    "django_q",
    "sending",
    "receipts",  # app label `callbacks`: its tables and admin URLs kept that name
    "stats",
    "fakes",
    "webhooks",
]

# What a notification's life brings along in the apps above `sending/` (which imports none of
# them): each is called with the batch, inside the transaction that accepted or changed it (a
# test key's send, once handed over). The one list of what happens when a notification is
# accepted, handed over on a test key or its status changes.
NOTIFICATIONS_ACCEPTED_HANDLERS = [
    "stats.services.daily_statistics_count_accepted",  # *_requested, sms_fragments
]
SIMULATED_SEND_HANDLERS = [
    "receipts.simulated.receipt_simulate",  # a test key's receipt, made and taken at once
]
STATUS_CHANGE_HANDLERS = [
    "stats.services.daily_statistics_count_moves",  # *_delivered, *_failed
    "webhooks.outbox.callback_events_record",  # the status callback's event (the outbox)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "sending.api.errors.LengthRequiredMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's exception first: a 500 answers JSON whatever DEBUG says.
    "sending.api.errors.JsonServerErrorMiddleware",
]

ROOT_URLCONF = "notifyproject.urls"
WSGI_APPLICATION = "notifyproject.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------------
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The Django Q ORM broker writes from several processes at once: WAL lets readers go on
    # while one writes, and IMMEDIATE transactions take the write lock up front instead of
    # failing half-way with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # With 0 the ORM broker reconnects on every call (~80 enqueues/s instead of 1,200+).
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, maximum=DAY)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's own cursors never prepare a statement (client-side binding); this only lets a
    # cursor that asks (psycopg's `prepare=True`, as the benchmarks' same-work view does) prepare
    # one. Off (None) for a pooler in transaction mode that can't keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        2**31 - 1 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, broker and Django Q ----------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "notifyproject.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "notify_cache",
        }
    }

PROVIDER_TIMEOUT_SECONDS = env_float("PROVIDER_TIMEOUT_SECONDS", 10.0, minimum=0.01, maximum=300)

# The delivery engine (sending/engine.py): provider calls in flight at once per drain (threads,
# each provider its own pool, over the clients' kept-alive connections); providers answer in
# 100-500 ms, and each call costs a thread waiting, not a process. 128: at 200 ms a call,
# 500 texts/s needs 100 in flight, and a drain claims again when half its pool is free
# (docs/delivery.md).
DELIVERY_CONCURRENCY = env_int("DELIVERY_CONCURRENCY", 128, minimum=1, maximum=1024)
# Optional: at most this many calls in flight to a provider across every qcluster (providers cap
# throughput per account); unset, no limit and no shared counter.
FIRETEXT_MAX_IN_FLIGHT = env_int("FIRETEXT_MAX_IN_FLIGHT", 0, maximum=100_000) or None
MMG_MAX_IN_FLIGHT = env_int("MMG_MAX_IN_FLIGHT", 0, maximum=100_000) or None
SES_MAX_IN_FLIGHT = env_int("SES_MAX_IN_FLIGHT", 0, maximum=100_000) or None

Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "notify"),
    "workers": env_int("Q_WORKERS", 2, minimum=1, maximum=256),
    # A send makes at most two provider calls (one failover) each bounded by the provider
    # timeout; the task timeout stays below `retry` so a slow task is never handed out twice.
    "timeout": env_int("Q_TASK_TIMEOUT_SECONDS", 60, minimum=1, maximum=DAY),
    "retry": env_int("Q_RETRY_SECONDS", 120, minimum=2, maximum=DAY),
    # Our own retry plan handles provider failures; the broker only redelivers a task whose
    # worker died. Never forever (django-q's default of 0).
    "max_attempts": 3,
    "ack_failures": True,
    # Successful tasks are not kept (-1): every send attempt and callback attempt is our own
    # row already, and keeping them makes Django Q lock its success rows for every result (the
    # cost is in bench/README.md). Failed tasks are kept whatever this says.
    "save_limit": env_int("Q_SAVE_LIMIT", -1, minimum=-1, maximum=100_000),
    "catch_up": False,
    "poll": 0.2,
    "label": "Django Q",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# django-q2's broker, counting the tasks a worker can't read (notifyproject/broker.py).
Q_CLUSTER["broker_class"] = f"notifyproject.broker.{'Redis' if REDIS_URL else 'ORM'}"
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TASK_TIMEOUT_SECONDS: must be below Q_RETRY_SECONDS")

# Status callbacks have a Django Q cluster of their own: their own queue (`CALLBACK_QUEUE`) and
# `CALLBACK_WORKERS` workers, started by `manage.py qcluster` beside the delivery cluster
# (notifyproject/cluster.py), so a slow service endpoint never holds a worker a delivery needs
# (contract section 10, "fair"). The name stays the delivery cluster's: it salts the task
# signatures, so both read what the web process queues.
CALLBACK_WORKERS = env_int("CALLBACK_WORKERS", 4, minimum=1, maximum=256)
CALLBACK_QUEUE = f"{Q_CLUSTER['name']}-callbacks"
# POSTs in flight for one service at once, across its drains (webhooks/delivery.py): what a
# slow endpoint can hold of the callbacks cluster's threads and time.
CALLBACK_IN_FLIGHT_PER_SERVICE = env_int(
    "CALLBACK_IN_FLIGHT_PER_SERVICE", 8, minimum=1, maximum=256
)
# Receipt drains have a queue of their own, served by a thread of each `manage.py qcluster`
# master (notifyproject/cluster.py, `QueueThread`), so a receipt is never applied behind the
# delivery drains (which hold a worker for up to half the task timeout) or slow callback endpoints.
RECEIPT_QUEUE = f"{Q_CLUSTER['name']}-receipts"
# Set by `manage.py qcluster` for the callbacks cluster it starts; not set by hand.
Q_CALLBACKS_CLUSTER = env_bool(CALLBACKS_CLUSTER_ENV, False)
if Q_CALLBACKS_CLUSTER:
    Q_CLUSTER.update(
        cluster_name=CALLBACK_QUEUE,
        workers=CALLBACK_WORKERS,
        # The schedules run in the delivery cluster (its sweep asks for callback drains here).
        scheduler=False,
        # A drain waiting in this cluster's own hands is one another idle cluster can't take.
        queue_limit=CALLBACK_WORKERS,
    )

# --- recovery and health (docs/delivery.md) -------------------------------------------------------
# A `created` notification whose task left the broker this long ago unclaimed is queued again.
REPLAY_MARGIN_SECONDS = env_int("REPLAY_MARGIN_SECONDS", 60, minimum=1)
# A provider call whose outcome nobody knows (its worker died) waits this long for a receipt
# before the notification may be sent again.
SEND_UNKNOWN_OUTCOME_HOLD_SECONDS = env_int("SEND_UNKNOWN_OUTCOME_HOLD_SECONDS", 600, minimum=0)
# /healthz says `degraded` past these.
HEALTH_CREATED_AGE_LIMIT_SECONDS = env_int("HEALTH_CREATED_AGE_LIMIT_SECONDS", 600, minimum=1)
HEALTH_UNSETTLED_CLAIM_LIMIT_SECONDS = env_int(
    "HEALTH_UNSETTLED_CLAIM_LIMIT_SECONDS", 300, minimum=1
)
HEALTH_UNREADABLE_TASK_WINDOW_SECONDS = env_int(
    "HEALTH_UNREADABLE_TASK_WINDOW_SECONDS", 900, minimum=1
)

# --- REST API ----------------------------------------------------------------------------------
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "3000/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["sending.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["sending.api.authentication.IsService"],
    "DEFAULT_THROTTLE_CLASSES": ["sending.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": API_RATE_LIMIT},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sending.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "sending.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Notify sending API",
    "DESCRIPTION": "Send text messages and emails; read their status and daily statistics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from this server, not a CDN: the docs work offline and their version is pinned.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # One named enum for each set of choices, whichever API's field (and whatever its name) uses it.
    "ENUM_NAME_OVERRIDES": {
        "NotificationTypeEnum": "sending.models.NotificationType",
        "NotificationStatusEnum": "sending.models.NotificationStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sending.api.schema.error_responses",
    ],
}

# API keys' secrets are kept encrypted (they sign the /v2 API's tokens, so a hash won't do).
API_KEY_ENCRYPTION_KEYS = env_fernet_keys("API_KEY_ENCRYPTION_KEYS")
if not API_KEY_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("API_KEY_ENCRYPTION_KEYS: must be set when DEBUG is off")
    API_KEY_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(f"api-keys:{SECRET_KEY}".encode()).digest()
        ).decode()
    ]

# --- providers ---------------------------------------------------------------------------------
# The SMS providers, one entry each (docs/adding-a-provider.md): the name people see, whether it
# takes international numbers, its client and its parsers (receipts; received texts, if it takes
# them), named by dotted path since `sending/` imports no parser. Everything else about a provider
# is made from this one list: its row (`sending.providers.providers_seed`), its receipt and
# received-text endpoints and their views, its receipt credentials (`<NAME>_RECEIPT_AUTH`), the
# receipts' provider choices and the console's filter on them, the channel its receipts may name.
SMS_PROVIDERS = {
    "firetext": {
        "display_name": "Firetext",
        "international": True,
        "client": "sending.clients.firetext.FiretextClient",
        "receipt_parser": "receipts.parsers.firetext.FiretextReceiptParser",
        "inbound_parser": "receipts.parsers.firetext.FiretextInboundParser",
    },
    "mmg": {
        "display_name": "MMG",
        "international": True,
        "client": "sending.clients.mmg.MmgClient",
        "receipt_parser": "receipts.parsers.mmg.MmgReceiptParser",
        "inbound_parser": "receipts.parsers.mmg.MmgInboundParser",
    },
}
FIRETEXT_URL = env_url(
    "FIRETEXT_URL", "https://www.firetext.co.uk/api/sendsms/json", schemes=("http", "https")
)
FIRETEXT_API_KEY = env_str("FIRETEXT_API_KEY")
FIRETEXT_INTERNATIONAL_API_KEY = env_str("FIRETEXT_INTERNATIONAL_API_KEY")
MMG_URL = env_url("MMG_URL", "https://api.mmg.co.uk/jsonv2a/api.php", schemes=("http", "https"))
MMG_API_KEY = env_str("MMG_API_KEY")
FIRETEXT_RECEIPT_URL = env_url("FIRETEXT_RECEIPT_URL", None, schemes=("http", "https"))
MMG_RECEIPT_URL = env_url("MMG_RECEIPT_URL", None, schemes=("http", "https"))
SMS_SENDER = env_str("SMS_SENDER", "NOTIFY")
SES_FROM_ADDRESS = env_str("SES_FROM_ADDRESS", "notifications@example.com")
AWS_REGION = env_str("AWS_REGION", "eu-west-1")

SMS_RETRY_DELAY_SECONDS = env_int("SMS_RETRY_DELAY_SECONDS", 300, maximum=DAY)
EMAIL_RETRY_DELAY_SECONDS = env_int("EMAIL_RETRY_DELAY_SECONDS", 300, maximum=DAY)
SMS_MAX_RETRIES = env_int("SMS_MAX_RETRIES", 48, maximum=1000)
EMAIL_MAX_RETRIES = env_int("EMAIL_MAX_RETRIES", 48, maximum=1000)

# Failover between SMS providers (contract section 5).
SMS_RESTING_PRIORITIES = {"firetext": 50, "mmg": 50}
FAILOVER_ERROR_THRESHOLD = env_int("FAILOVER_ERROR_THRESHOLD", 10, minimum=1, maximum=1_000_000)
FAILOVER_ERROR_WINDOW_SECONDS = env_int("FAILOVER_ERROR_WINDOW_SECONDS", 60, minimum=1, maximum=DAY)

# --- receipts ----------------------------------------------------------------------------------
CALLBACK_BASIC_AUTH = env_credentials("CALLBACK_BASIC_AUTH")
# Each SMS provider's own pairs: when set, its receipt endpoints accept only these.
FIRETEXT_RECEIPT_AUTH = env_credentials("FIRETEXT_RECEIPT_AUTH")
MMG_RECEIPT_AUTH = env_credentials("MMG_RECEIPT_AUTH")
SES_SNS_TOPIC_ARNS = env_list("SES_SNS_TOPIC_ARNS")
SNS_VERIFY_SIGNATURES = env_bool("SNS_VERIFY_SIGNATURES", True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- status callbacks to services (contract section 10) -------------------------------------
SERVICE_CALLBACK_TIMEOUT_SECONDS = env_float("SERVICE_CALLBACK_TIMEOUT_SECONDS", 5.0, minimum=0.01)
SERVICE_CALLBACK_MAX_ATTEMPTS = env_int("SERVICE_CALLBACK_MAX_ATTEMPTS", 25, minimum=1)
# Plain http:// and loopback/private addresses allowed: local development and tests only.
SERVICE_CALLBACK_ALLOW_INSECURE = env_bool("SERVICE_CALLBACK_ALLOW_INSECURE", False)

# --- metrics -----------------------------------------------------------------------------------
STATSD_HOST = env_optional("STATSD_HOST")
STATSD_PORT = env_int("STATSD_PORT", 8125, minimum=1, maximum=65535)
STATSD_PREFIX = env_str("STATSD_PREFIX", "notify")
# django-statsd (view and query timings) reads these once at import. Its middleware costs CPU
# on every request even when disabled, so it is only installed when metrics are on.
STATSD_DISABLED = STATSD_HOST is None
STATSD_DEBUG = False
if not STATSD_DISABLED:
    MIDDLEWARE.insert(0, "django_statsd.middleware.StatsdMiddleware")

# --- the rest ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["notifyproject.formats"]  # times with seconds and offset (formats/en)
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "notifyproject.logging.KeyValueFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # python-statsd logs every metric it sends at INFO.
        "statsd": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
