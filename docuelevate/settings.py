"""DocuElevate settings: one module, every value read from the environment.

The defaults are the embedded mode (SQLite and a file-based broker under WORKDIR, no
Redis, no Meilisearch), so ``make run`` works on a bare machine. Production sets
``DATABASE_URL``, ``REDIS_URL`` and friends; every variable is listed in ``.env.example``
and in the README. A bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from docuelevate import __version__
from docuelevate.env import (
    EnvError,
    env_bool,
    env_choice,
    env_int,
    env_int_list,
    env_list,
    env_networks,
    env_optional,
    env_path,
    env_rate,
    env_secret,
    env_str,
)
from docuelevate.errors import InvalidInput
from documents.organise.storage_paths import filename_template_validate

# Django's generic classes (ModelAdmin[Document]) become subscriptable at run time, so a
# class can name its model for the type checker.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = __version__

# --- Core -------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

# WORKDIR holds the SQLite database, the embedded broker and (by default) the documents.
WORKDIR = env_path("WORKDIR", Path("workdir"), base=BASE_DIR)
WORKDIR.mkdir(parents=True, exist_ok=True)

AUTH_ENABLED = env_bool("AUTH_ENABLED", True)
ALLOW_INSECURE_NO_AUTH = env_bool("ALLOW_INSECURE_NO_AUTH", False)
if not AUTH_ENABLED and not DEBUG and not ALLOW_INSECURE_NO_AUTH:
    raise EnvError(
        "AUTH_ENABLED=false opens every document to anyone who can reach the server; "
        "it is refused with DEBUG=false unless ALLOW_INSECURE_NO_AUTH=true is set too."
    )

# SESSION_SECRET is Django's SECRET_KEY. Only a debug process may invent one, because a
# random key per process breaks sessions across restarts and across gunicorn workers.
_session_secret = (
    env_secret("SESSION_SECRET", min_length=32, required=False)
    if AUTH_ENABLED
    else env_optional("SESSION_SECRET")
)
if _session_secret is None:
    if not DEBUG:
        raise EnvError(
            "SESSION_SECRET is required when DEBUG=false; set it (or SESSION_SECRET_FILE) "
            'to a random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))".'
        )
    _session_secret = secrets.token_urlsafe(50)
SECRET_KEY = _session_secret
# Rotation: sessions and signed values made with the previous key stay valid.
SECRET_KEY_FALLBACKS = [key for key in [env_optional("SESSION_SECRET_PREVIOUS")] if key]

EXTERNAL_HOSTNAME = env_str("EXTERNAL_HOSTNAME", "localhost")
ALLOWED_HOSTS = list(
    dict.fromkeys([EXTERNAL_HOSTNAME, "localhost", "127.0.0.1", "[::1]", *env_list("ALLOWED_HOSTS")])
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "accounts",
    "documents",
    "search",
    "destinations",
    "sources",
    "ops",
]

MIDDLEWARE = [
    # Probes first: they answer whatever the Host header (Kubernetes sends the pod's IP) and
    # are never redirected to HTTPS. Then the request timings, around everything else.
    "ops.middleware.ProbeMiddleware",
    "ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Early, so every later middleware's lines and refusals carry the request id (ops.requestlog).
    "ops.requestlog.RequestLogMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Right after authentication: it counts per user, and refuses before any view runs.
    "docuelevate.ratelimit.RateLimitMiddleware",
    # AUTH_ENABLED=false: every request acts as the one local user.
    *([] if AUTH_ENABLED else ["accounts.middleware.SingleUserMiddleware"]),
    # Who acts and from where, for the audit trail (accounts.audit).
    "accounts.audit.AuditContextMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "docuelevate.middleware.RequestBodyLimitMiddleware",
    # A view that met no database answers 503, not 500 (docuelevate.middleware).
    "docuelevate.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "docuelevate.urls"
WSGI_APPLICATION = "docuelevate.wsgi.application"

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
                "accounts.context_processors.sign_in_options",
            ],
            # Tags every page shares (links by route name, the status badge).
            "libraries": {"pages": "docuelevate.templatetags.pages"},
        },
    },
]

# --- Database ---------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{WORKDIR / 'db.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_health_checks=True)
except ValueError as exc:
    raise EnvError(f"DATABASE_URL is not a database URL this server understands: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the one writer,
    # IMMEDIATE transactions queue writers on the busy timeout instead of failing them.
    _database["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # On disk rather than in memory, so a worker process started by a test sees the data;
    # one file per test run, so two runs side by side do not share it.
    _database["TEST"] = {"NAME": str(WORKDIR / f"test-db-{os.getpid()}.sqlite3")}
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
else:
    raise EnvError(
        f"DATABASE_URL uses {_database['ENGINE']!r}; DocuElevate supports postgresql:// and sqlite://."
    )
DATABASES: dict[str, Any] = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery -----------------------------------------------------------------

REDIS_URL = env_optional("REDIS_URL")

if REDIS_URL:
    CACHES: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # A file cache is shared by every process on the machine, unlike the memory cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(WORKDIR / "cache"),
        }
    }

# Without a broker server, Celery passes messages through files under WORKDIR: a real
# worker process still consumes them, so the embedded mode behaves like production.
EMBEDDED_BROKER_DIR = WORKDIR / "broker"
# The host is ignored by the file transport; naming one spares a kombu warning at each start.
CELERY_BROKER_URL = env_optional("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/"
CELERY_RESULT_BACKEND = (
    env_optional("CELERY_RESULT_BACKEND") or REDIS_URL or (WORKDIR / "celery-results").as_uri()
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed", "control"):
        (EMBEDDED_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(EMBEDDED_BROKER_DIR / "queue"),
        "data_folder_out": str(EMBEDDED_BROKER_DIR / "queue"),
        "processed_folder": str(EMBEDDED_BROKER_DIR / "processed"),
        "control_folder": str(EMBEDDED_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # An unacknowledged message returns to the queue after this long. Recovery does not wait
    # for it: a run whose worker died is found by its expired claim (WORKER_CLAIM_TIMEOUT)
    # and sent again within minutes; the message that comes back later finds its work done
    # or claimed by a live run, and does nothing. It outlasts the longest task all the same,
    # so a slow OCR job's message is not handed out twice while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600}
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)

CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ACKS_LATE = True
# With acks_late, a task whose worker process died is re-queued rather than lost.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker process that grew past this (KiB) after a task is replaced, so one huge
# document cannot leave a bloated process behind.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("WORKER_MAX_MEMORY_PER_CHILD", 1_500_000, minimum=100_000)
CELERY_TASK_TRACK_STARTED = True
# Outcomes live in the database (steps, deliveries, the log); a task keeps a result only when
# a caller waits for it (ops.tasks.ping_task). Sending a task that keeps one also subscribes
# to the result store, which during a Redis outage blocked a send for 19 s and then broke
# the sending process's result consumer for good.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost the broker reconnects by itself, however long the broker is away (the
# default gives up after 100 tries and stops the worker); what the outage kept from the
# queue is sent again by the watchdog (documents.tasks.steps_resend_stalled_enqueue).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A step still running when the broker went away finishes and records its outcome; its
# claim, not the broker, keeps other runs off it (documents.pipeline.claims).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# --- ops: beat heartbeat and monitoring (productioncheck) ---
# django-celery-beat's DatabaseScheduler, plus a heartbeat row that lets productioncheck
# see that beat runs, and runs exactly once.
CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"
# Seconds a beat's lease on sending the periodic tasks lasts unrenewed (ops.beat): a second
# beat stands by and takes over this long after the first one died without a word.
BEAT_LEASE_SECONDS = env_int("BEAT_LEASE_SECONDS", 60, minimum=2)
UPTIME_KUMA_URL = env_optional("UPTIME_KUMA_URL")
METRICS_TOKEN = env_optional("METRICS_TOKEN")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS")
# --- end ops ---
# --- Probes and metrics (ops/health.py, ops/metrics.py, ops/middleware.py) ---
# /metrics answers these addresses or networks (10.0.0.0/8) without METRICS_TOKEN (ops.api.views).
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as exc:
        raise EnvError(
            f"METRICS_ALLOWED_IPS: {exc}; list addresses or networks, e.g. 10.0.0.5,10.1.0.0/16."
        ) from None
# Each web server's workers keep their request timings here, one folder per server, so a
# scrape answered by any worker counts all of them (prometheus-client's multiprocess mode).
# Local disk or tmpfs: the files are memory-mapped, which network shares do badly.
METRICS_DIR = env_path("METRICS_DIR", WORKDIR / "metrics", base=BASE_DIR)
# --- end probes and metrics ---
# --- Periodic tasks (ops/schedule.py, setup_periodic_tasks) ---
# Minutes between two pushes to UPTIME_KUMA_URL; give the monitor a heartbeat interval a
# little longer, so one late push does not page anyone.
UPTIME_KUMA_PING_INTERVAL = env_int("UPTIME_KUMA_PING_INTERVAL", 5, minimum=1, maximum=1440)
# Processing-log and audit-log entries older than this many days are pruned weekly; 0 keeps
# them forever (some archives must keep an audit trail for years).
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 365, minimum=0)
# --- end periodic tasks ---
CELERY_TIMEZONE = env_str("TIME_ZONE", "UTC")

# --- Documents and the pipeline -----------------------------------------------------------

# Where originals and processed files live: the local WORKDIR, or an S3-compatible bucket so
# api and workers on different machines share no volume.
DOCUMENT_STORAGE = env_choice("DOCUMENT_STORAGE", "local", ("local", "s3"))
if DOCUMENT_STORAGE == "local":
    _document_storage: dict[str, Any] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(WORKDIR), "file_permissions_mode": 0o640},
    }
else:
    _document_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("DOCUMENT_STORAGE_S3_BUCKET") or None,
            "location": env_str("DOCUMENT_STORAGE_S3_PREFIX", "").strip("/"),
            "endpoint_url": env_optional("DOCUMENT_STORAGE_S3_ENDPOINT_URL"),
            "region_name": env_optional("DOCUMENT_STORAGE_S3_REGION"),
            "access_key": env_optional("AWS_ACCESS_KEY_ID"),
            "secret_key": env_optional("AWS_SECRET_ACCESS_KEY"),
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
            # Downloads past 16 MiB spill to a temporary file instead of staying in memory.
            "max_memory_size": 16 * 1024**2,
        },
    }
    if not _document_storage["OPTIONS"]["bucket_name"]:
        raise EnvError("DOCUMENT_STORAGE=s3 needs DOCUMENT_STORAGE_S3_BUCKET.")
# Local scratch space for steps; always on this machine, whatever the document storage.
SCRATCH_DIR = WORKDIR / "tmp"

MAX_UPLOAD_SIZE = env_int("MAX_UPLOAD_SIZE", 1024**3, minimum=1)
# Free space (MiB) WORKDIR keeps: below it uploads and other ingest are refused (507) and the
# pipeline pauses its documents until space returns (docuelevate.diskspace), so a full disk
# stops new work cleanly instead of failing it half-written.
MIN_FREE_DISK_MB = env_int("MIN_FREE_DISK_MB", 500, minimum=0)
MAX_PAGES = env_int("MAX_PAGES", 500, minimum=1)
# Images larger than this many pixels are refused as decompression bombs, and so are PDF
# pages OCR would render larger (documents.pipeline.inspection). 100 megapixels keep the
# worker's process tree under 1.5 GB while OCR reads such a page (docs/pipeline.md).
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 100_000_000, minimum=1_000_000)
ENABLE_DEDUPLICATION = env_bool("ENABLE_DEDUPLICATION", True)
STEP_TIMEOUT = env_int("STEP_TIMEOUT", 600, minimum=10)
# Seconds a running step's or delivery's claim lasts unless its worker renews it (it does so
# every sixth of this while the run goes on). A claim that runs out lost its worker, whatever
# name that worker comes back with: the watchdog (every minute) or any worker starting gives
# the work to another run (documents.pipeline.claims).
WORKER_CLAIM_TIMEOUT = env_int("WORKER_CLAIM_TIMEOUT", 90, minimum=3)
TASK_RETRY_MAX_RETRIES = env_int("TASK_RETRY_MAX_RETRIES", 3, minimum=0)
TASK_RETRY_DELAYS = env_int_list("TASK_RETRY_DELAYS", [60, 300, 900])

# Organising (docs/organise.md). Which managed lists extraction may add entries to when what
# it finds matches none: correspondents and tags grow with the archive; document types are a
# list people keep.
METADATA_CREATE_ENTRIES = env_list("METADATA_CREATE_ENTRIES", ["correspondents", "tags"])
if unknown_lists := set(METADATA_CREATE_ENTRIES) - {"correspondents", "tags", "document_types"}:
    raise EnvError(
        f"METADATA_CREATE_ENTRIES: unknown list(s) {sorted(unknown_lists)}; "
        "use correspondents, tags, document_types."
    )
# Documents whose extraction is less sure than this (0-100) wait in the review inbox.
CONFIDENCE_REVIEW_THRESHOLD = env_int("CONFIDENCE_REVIEW_THRESHOLD", 70, minimum=0)
# Days a document stays in the trash before beat empties it.
EMPTY_TRASH_DELAY = env_int("EMPTY_TRASH_DELAY", 30, minimum=1)
# How processed files are named inside their document's folder (docs/organise.md "Storage
# paths and FILENAME_FORMAT"), e.g. {created_year}/{correspondent}/{title}; unset keeps
# YYYY-MM-DD_Title. Checked here so a typo stops start-up rather than every finalize.
FILENAME_FORMAT = env_str("FILENAME_FORMAT", "").strip()
if FILENAME_FORMAT:
    try:
        FILENAME_FORMAT = filename_template_validate(FILENAME_FORMAT)
    except InvalidInput as error:
        raise EnvError(f"FILENAME_FORMAT: {error.message}") from None
# Matching that learns (documents.matching; the defaults' figures are in its defaults.py):
# per owner, from MATCHING_MIN_DOCUMENTS documents, retrained by beat once
# MATCHING_RETRAIN_AFTER documents are new or corrected; a suggestion is set from
# MATCHING_CONFIDENCE_THRESHOLD (0-100, like CONFIDENCE_REVIEW_THRESHOLD), only shown below.
MATCHING_ENABLED = env_bool("MATCHING_ENABLED", True)
MATCHING_MIN_DOCUMENTS = env_int("MATCHING_MIN_DOCUMENTS", 50, minimum=2)
MATCHING_CONFIDENCE_THRESHOLD = env_int("MATCHING_CONFIDENCE_THRESHOLD", 70, minimum=1, maximum=100)
MATCHING_RETRAIN_AFTER = env_int("MATCHING_RETRAIN_AFTER", 20, minimum=1)

OCR_PROVIDERS = env_list("OCR_PROVIDERS", ["tesseract"])
if unknown_ocr := set(OCR_PROVIDERS) - {"tesseract", "azure"}:
    raise EnvError(f"OCR_PROVIDERS: unknown engine(s) {sorted(unknown_ocr)}; use tesseract, azure.")
TESSERACT_LANGUAGE = env_str("TESSERACT_LANGUAGE", "eng+deu")
OCR_JOBS = env_int("OCR_JOBS", 2, minimum=1)
AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT = env_optional("AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT")
AZURE_DOCUMENT_INTELLIGENCE_KEY = env_optional("AZURE_DOCUMENT_INTELLIGENCE_KEY")
if "azure" in OCR_PROVIDERS and not (
    AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT and AZURE_DOCUMENT_INTELLIGENCE_KEY
):
    raise EnvError(
        "OCR_PROVIDERS=azure needs AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT and AZURE_DOCUMENT_INTELLIGENCE_KEY."
    )

GOTENBERG_URL = env_optional("GOTENBERG_URL")
CONVERT_TIMEOUT = env_int("CONVERT_TIMEOUT", 180, minimum=5)
# Private networks from which POST /api/process-url may fetch (an intranet document
# server, say); everything private is refused otherwise, cloud metadata addresses always.
URL_FETCH_ALLOWED_NETWORKS = env_networks("URL_FETCH_ALLOWED_NETWORKS")
# Certificate authorities (a PEM file) trusted for https URLs besides the system's: the
# CA of an intranet document server.
URL_FETCH_CA_BUNDLE = env_optional("URL_FETCH_CA_BUNDLE")
if URL_FETCH_CA_BUNDLE and not Path(URL_FETCH_CA_BUNDLE).is_file():
    raise EnvError(f"URL_FETCH_CA_BUNDLE: {URL_FETCH_CA_BUNDLE} is not a file.")
# How LibreOffice on the worker is kept off the network (documents/pipeline/isolation.py):
# "namespace" runs it in a network namespace of its own and refuses to convert where none
# can be made; "none" is for a worker whose network has no egress by other means.
CONVERTER_SANDBOX = env_choice("CONVERTER_SANDBOX", "namespace", ("namespace", "none"))

AI_PROVIDER = env_choice("AI_PROVIDER", "rules", ("rules", "openai"))
AI_MODEL = env_str("AI_MODEL", "gpt-4o-mini")
OPENAI_API_KEY = env_optional("OPENAI_API_KEY")
OPENAI_BASE_URL = env_optional("OPENAI_BASE_URL")

MULTI_USER_ENABLED = env_bool("MULTI_USER_ENABLED", False)

# Search: the built-in database full text unless a Meilisearch server is configured.
MEILISEARCH_URL = env_optional("MEILISEARCH_URL")
MEILISEARCH_API_KEY = env_optional("MEILISEARCH_API_KEY")
MEILISEARCH_INDEX_NAME = env_str("MEILISEARCH_INDEX_NAME", "documents")
MEILISEARCH_TIMEOUT = env_int("MEILISEARCH_TIMEOUT", 10, minimum=1)

# --- Backups (ops/backup.py, manage.py backup / restore) ---
# false: beat makes no backups (productioncheck warns); the backup command still works by hand.
BACKUP_ENABLED = env_bool("BACKUP_ENABLED", True)
# Inside WORKDIR by default, and left out of the file manifest; put it on another disk (or
# copy it off the machine) so one lost volume does not take the backups with it.
BACKUP_DIR = env_path("BACKUP_DIR", WORKDIR / "backups", base=BASE_DIR)
# How many successful backups of each tier are kept; older ones are deleted with their records.
BACKUP_RETAIN_HOURLY = env_int("BACKUP_RETAIN_HOURLY", 96, minimum=1)
BACKUP_RETAIN_DAILY = env_int("BACKUP_RETAIN_DAILY", 21, minimum=1)
BACKUP_RETAIN_WEEKLY = env_int("BACKUP_RETAIN_WEEKLY", 13, minimum=1)
# --- end backups ---

# --- Destinations from the environment (destinations/, docs/destinations.md) ---
# <KIND>_ENABLED=true adds a system-wide destination that every processed document is
# delivered to. Unset, it follows the kind's own address or token (S3_BUCKET_NAME, FTP_HOST,
# PAPERLESS_HOST, …), so DocuElevate .env files from before the switches keep delivering.
# destinations.services.system_destinations_sync keeps the row in step with these values
# (the worker's environment is the one that counts: it delivers).
# Seconds the periodic credentials check waits for one destination's answer; past it the
# destination is marked failing (timeout), and the other destinations are not held up.
DESTINATION_CHECK_TIMEOUT = env_int("DESTINATION_CHECK_TIMEOUT", 60, minimum=1, maximum=3600)
S3_BUCKET_NAME = env_str("S3_BUCKET_NAME", "")
S3_ENABLED = env_bool("S3_ENABLED", bool(S3_BUCKET_NAME))
S3_FOLDER_PREFIX = env_str("S3_FOLDER_PREFIX", "")
S3_STORAGE_CLASS = env_str("S3_STORAGE_CLASS", "STANDARD")
# Empty sends no ACL: buckets made since 2023 refuse ACLs (the bucket's policy decides).
S3_ACL = env_str("S3_ACL", "")
S3_ENDPOINT_URL = env_optional("S3_ENDPOINT_URL")
# Shared with DOCUMENT_STORAGE=s3. Unset keys: boto3's own chain (an instance role).
AWS_REGION = env_optional("AWS_REGION")
AWS_ACCESS_KEY_ID = env_optional("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = env_optional("AWS_SECRET_ACCESS_KEY")
if S3_ENABLED:
    if not S3_BUCKET_NAME:
        raise EnvError("S3_ENABLED=true needs S3_BUCKET_NAME, the bucket documents are delivered to.")
    if bool(AWS_ACCESS_KEY_ID) != bool(AWS_SECRET_ACCESS_KEY):
        raise EnvError(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together; set both, or neither to use "
            "the machine's own AWS credentials (an instance role)."
        )
# Paperless-ngx, by its REST API (destinations/kinds/paperless.py). Unset PAPERLESS_ENABLED
# follows PAPERLESS_HOST, as it did in DocuElevate's .env files before the switch existed.
PAPERLESS_HOST = env_str("PAPERLESS_HOST", "").strip().rstrip("/")
PAPERLESS_NGX_API_TOKEN = env_optional("PAPERLESS_NGX_API_TOKEN")
PAPERLESS_ENABLED = env_bool("PAPERLESS_ENABLED", bool(PAPERLESS_HOST))
PAPERLESS_CUSTOM_FIELD_ABSENDER = env_str("PAPERLESS_CUSTOM_FIELD_ABSENDER", "").strip()
# Our metadata field -> the Paperless custom field it fills, as a JSON object.
PAPERLESS_CUSTOM_FIELDS_MAPPING: dict[str, str] = {}
if _paperless_mapping := env_str("PAPERLESS_CUSTOM_FIELDS_MAPPING", "").strip():
    try:
        PAPERLESS_CUSTOM_FIELDS_MAPPING = json.loads(_paperless_mapping)
    except ValueError:
        raise EnvError(
            "PAPERLESS_CUSTOM_FIELDS_MAPPING is not valid JSON; write an object such as "
            '{"absender": "Sender"}.'
        ) from None
    if not isinstance(PAPERLESS_CUSTOM_FIELDS_MAPPING, dict) or not all(
        isinstance(value, str) and value.strip() for value in PAPERLESS_CUSTOM_FIELDS_MAPPING.values()
    ):
        raise EnvError(
            "PAPERLESS_CUSTOM_FIELDS_MAPPING must be a JSON object of metadata field names to Paperless "
            'custom field names, such as {"absender": "Sender", "empfaenger": "Recipient"}.'
        )
if PAPERLESS_ENABLED:
    if not PAPERLESS_HOST:
        raise EnvError(
            "PAPERLESS_ENABLED=true needs PAPERLESS_HOST, Paperless-ngx's address such as "
            "https://paperless.example.com (set PAPERLESS_ENABLED=false to deliver nothing there)."
        )
    if not PAPERLESS_HOST.startswith(("http://", "https://")):
        raise EnvError(
            "PAPERLESS_HOST must start with http:// or https://, e.g. https://paperless.example.com."
        )
    if not PAPERLESS_NGX_API_TOKEN:
        raise EnvError(
            "Delivering to Paperless-ngx (PAPERLESS_HOST) needs PAPERLESS_NGX_API_TOKEN, the API token of "
            "the Paperless-ngx user documents arrive as (PAPERLESS_ENABLED=false delivers nothing there)."
        )
# FTP: explicit TLS (AUTH TLS), never falling back; plain FTP only with FTP_USE_TLS=false
# and FTP_ALLOW_PLAINTEXT=true, both in so many words. FTP_CA_BUNDLE: CAs trusted besides
# the system's, for every FTP destination.
FTP_HOST = env_str("FTP_HOST", "").strip()
FTP_ENABLED = env_bool("FTP_ENABLED", bool(FTP_HOST))
FTP_PORT = env_int("FTP_PORT", 21, minimum=1, maximum=65535)
FTP_USERNAME = env_str("FTP_USERNAME", "").strip()
FTP_PASSWORD = env_optional("FTP_PASSWORD")
FTP_FOLDER = env_str("FTP_FOLDER", "").strip()
FTP_USE_TLS = env_bool("FTP_USE_TLS", True)
FTP_ALLOW_PLAINTEXT = env_bool("FTP_ALLOW_PLAINTEXT", False)
FTP_CA_BUNDLE = env_optional("FTP_CA_BUNDLE")
if FTP_CA_BUNDLE and not Path(FTP_CA_BUNDLE).is_file():
    raise EnvError(f"FTP_CA_BUNDLE: {FTP_CA_BUNDLE} is not a file.")
if FTP_ENABLED:
    if not FTP_HOST or not FTP_USERNAME:
        raise EnvError("FTP_ENABLED=true needs FTP_HOST and FTP_USERNAME.")
    if not FTP_USE_TLS and not FTP_ALLOW_PLAINTEXT:
        raise EnvError(
            "FTP_USE_TLS=false sends the FTP password and documents readable; set "
            "FTP_ALLOW_PLAINTEXT=true as well if that is meant, or leave FTP_USE_TLS on."
        )
# SFTP: the server's host key is checked against SFTP_HOST_KEY (fingerprints or
# known_hosts lines), else against the worker's known_hosts files.
SFTP_HOST = env_str("SFTP_HOST", "").strip()
SFTP_ENABLED = env_bool("SFTP_ENABLED", bool(SFTP_HOST))
SFTP_PORT = env_int("SFTP_PORT", 22, minimum=1, maximum=65535)
SFTP_USERNAME = env_str("SFTP_USERNAME", "").strip()
SFTP_PASSWORD = env_optional("SFTP_PASSWORD")
SFTP_FOLDER = env_str("SFTP_FOLDER", "").strip()
# The key itself (PEM or OpenSSH text; SFTP_PRIVATE_KEY_FILE reads it from a file), or, as
# earlier releases took it, the path of the key file.
SFTP_PRIVATE_KEY = env_optional("SFTP_PRIVATE_KEY")
SFTP_PRIVATE_KEY_PASSPHRASE = env_optional("SFTP_PRIVATE_KEY_PASSPHRASE")
SFTP_HOST_KEY = env_str("SFTP_HOST_KEY", "").strip()
SFTP_DISABLE_HOST_KEY_VERIFICATION = env_bool("SFTP_DISABLE_HOST_KEY_VERIFICATION", False)
if SFTP_ENABLED:
    if not SFTP_HOST or not SFTP_USERNAME:
        raise EnvError("SFTP_ENABLED=true needs SFTP_HOST and SFTP_USERNAME.")
    if SFTP_PRIVATE_KEY and "-----BEGIN" not in SFTP_PRIVATE_KEY:
        try:
            SFTP_PRIVATE_KEY = Path(SFTP_PRIVATE_KEY).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise EnvError(
                "SFTP_PRIVATE_KEY is neither a private key (-----BEGIN …) nor the path of a "
                "readable key file."
            ) from None
    if not SFTP_PRIVATE_KEY and not SFTP_PASSWORD:
        raise EnvError("SFTP_ENABLED=true needs SFTP_PRIVATE_KEY or SFTP_PASSWORD to sign in with.")
# WebDAV (any server) and Nextcloud (WebDAV at /remote.php/dav/files/<user>/).
WEBDAV_URL = env_str("WEBDAV_URL", "")
WEBDAV_ENABLED = env_bool("WEBDAV_ENABLED", bool(WEBDAV_URL))
WEBDAV_USERNAME = env_str("WEBDAV_USERNAME", "")
WEBDAV_PASSWORD = env_str("WEBDAV_PASSWORD", "")
WEBDAV_FOLDER = env_str("WEBDAV_FOLDER", "")
WEBDAV_VERIFY_SSL = env_bool("WEBDAV_VERIFY_SSL", True)
if WEBDAV_ENABLED and not WEBDAV_URL:
    raise EnvError("WEBDAV_ENABLED=true needs WEBDAV_URL, the address of the WebDAV share.")
# The server's address, or the full WebDAV address of the user's files (…/remote.php/dav/files/<user>).
NEXTCLOUD_UPLOAD_URL = env_str("NEXTCLOUD_UPLOAD_URL", "")
NEXTCLOUD_ENABLED = env_bool("NEXTCLOUD_ENABLED", bool(NEXTCLOUD_UPLOAD_URL))
NEXTCLOUD_USERNAME = env_str("NEXTCLOUD_USERNAME", "")
NEXTCLOUD_PASSWORD = env_str("NEXTCLOUD_PASSWORD", "")
NEXTCLOUD_FOLDER = env_str("NEXTCLOUD_FOLDER", "")
if NEXTCLOUD_ENABLED and not (NEXTCLOUD_UPLOAD_URL and NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD):
    raise EnvError(
        "NEXTCLOUD_ENABLED=true needs NEXTCLOUD_UPLOAD_URL, NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD "
        "(an app password)."
    )
# E-mail: each document as an attachment to DEST_EMAIL_DEFAULT_RECIPIENT. USE_TLS means
# STARTTLS, or TLS from the first byte on port 465; false sends in plain text.
DEST_EMAIL_HOST = env_str("DEST_EMAIL_HOST", "")
DEST_EMAIL_ENABLED = env_bool("DEST_EMAIL_ENABLED", bool(DEST_EMAIL_HOST))
DEST_EMAIL_PORT = env_int("DEST_EMAIL_PORT", 587, minimum=1, maximum=65535)
DEST_EMAIL_USERNAME = env_str("DEST_EMAIL_USERNAME", "")
DEST_EMAIL_PASSWORD = env_str("DEST_EMAIL_PASSWORD", "")
DEST_EMAIL_USE_TLS = env_bool("DEST_EMAIL_USE_TLS", True)
# The From address, e.g. "DocuElevate <docuelevate@example.com>"; unset = DEST_EMAIL_USERNAME.
DEST_EMAIL_SENDER = env_str("DEST_EMAIL_SENDER", "")
DEST_EMAIL_DEFAULT_RECIPIENT = env_str("DEST_EMAIL_DEFAULT_RECIPIENT", "")
# Larger documents are not mailed (the whole message is built in memory, and most mail
# servers refuse more than 20-25 MB once encoded); applies to users' e-mail destinations too.
DEST_EMAIL_MAX_ATTACHMENT_SIZE = env_int("DEST_EMAIL_MAX_ATTACHMENT_SIZE", 15 * 1024 * 1024, minimum=1024)
if DEST_EMAIL_ENABLED and not (DEST_EMAIL_HOST and DEST_EMAIL_DEFAULT_RECIPIENT):
    raise EnvError(
        "DEST_EMAIL_ENABLED=true needs DEST_EMAIL_HOST (the SMTP server) and DEST_EMAIL_DEFAULT_RECIPIENT."
    )
if DEST_EMAIL_ENABLED and not (DEST_EMAIL_SENDER or "@" in DEST_EMAIL_USERNAME):
    raise EnvError("DEST_EMAIL_ENABLED=true needs DEST_EMAIL_SENDER, the From address of the mails.")
# --- end destinations ---

# --- Sources: the doors that run by themselves (sources/, docs/ingestion.md) ---
# Folders on this machine whose files become documents, comma-separated; each is a
# system-wide source (sources.services.system_sources_sync), its documents the first operator's
# unless an operator picks another owner on /sources.
WATCH_FOLDERS = env_list("WATCH_FOLDERS")
WATCH_FOLDER_POLL_INTERVAL = env_int("WATCH_FOLDER_POLL_INTERVAL", 1, minimum=1, maximum=24 * 60)
# Taken files are deleted rather than moved to processed/ in the folder.
WATCH_FOLDER_DELETE_AFTER_PROCESS = env_bool("WATCH_FOLDER_DELETE_AFTER_PROCESS", False)
# A file is taken once it has not changed for this long, never while a scanner still writes it.
WATCH_FOLDER_SETTLE_SECONDS = env_int("WATCH_FOLDER_SETTLE_SECONDS", 5, minimum=0, maximum=3600)
# How long a poll holds its source without renewing it (after every item): a poller killed
# mid-way holds the source this long, then the next poll takes it up. Shorter only where a
# poller is killed on purpose (the tests, bench/ingest.py).
SOURCES_POLL_LEASE_SECONDS = env_int("SOURCES_POLL_LEASE_SECONDS", 300, minimum=1, maximum=24 * 3600)


def _imap_mailbox(number: int) -> dict[str, Any] | None:
    """IMAP<n>_*: one system mailbox, or None when IMAP<n>_HOST is unset (or _ENABLED=false)."""
    prefix = f"IMAP{number}_"
    # password, or OAuth 2.0 with Gmail (google) or Microsoft 365 (microsoft), whose IMAP
    # servers are the default host then (sources/kinds/imap_oauth.py).
    auth = env_choice(prefix + "AUTH", "password", ("password", "google", "microsoft"))
    oauth_host = {"google": "imap.gmail.com", "microsoft": "outlook.office365.com"}.get(auth, "")
    host = env_str(prefix + "HOST", "").strip() or oauth_host
    if not env_bool(prefix + "ENABLED", bool(host)):
        return None
    username = env_str(prefix + "USERNAME", "").strip()
    if not host or not username:
        raise EnvError(f"{prefix}ENABLED=true needs {prefix}HOST and {prefix}USERNAME.")
    use_ssl = env_bool(prefix + "SSL", True)
    return {
        "number": number,
        "host": host,
        "port": env_int(prefix + "PORT", 993 if use_ssl else 143, minimum=1, maximum=65535),
        "ssl": use_ssl,
        "username": username,
        "password": env_str(prefix + "PASSWORD", ""),
        "auth": auth,
        "oauth_client_id": env_str(prefix + "OAUTH_CLIENT_ID", "").strip(),
        "oauth_client_secret": env_str(prefix + "OAUTH_CLIENT_SECRET", "").strip(),
        "oauth_refresh_token": env_str(prefix + "OAUTH_REFRESH_TOKEN", "").strip(),
        # Microsoft only: the directory a single-tenant app is registered in.
        "oauth_tenant_id": env_str(prefix + "OAUTH_TENANT_ID", "common").strip(),
        "poll_interval_minutes": env_int(prefix + "POLL_INTERVAL_MINUTES", 5, minimum=1, maximum=24 * 60),
        "delete_after_process": env_bool(prefix + "DELETE_AFTER_PROCESS", False),
    }


# The system mailboxes IMAP1_* and IMAP2_* describe; their documents are the first operator's.
IMAP_MAILBOXES = [mailbox for number in (1, 2) if (mailbox := _imap_mailbox(number)) is not None]
# Folders are opened read-only: no mail is marked seen, moved or deleted.
IMAP_READONLY_MODE = env_bool("IMAP_READONLY_MODE", False)
# documents_only: attachments of a type DocuElevate processes, no inline pictures; all: every one.
IMAP_ATTACHMENT_FILTER = env_choice("IMAP_ATTACHMENT_FILTER", "documents_only", ("documents_only", "all"))
# CAs trusted besides the system's for mail servers (a company CA, a test server's).
IMAP_CA_BUNDLE = env_optional("IMAP_CA_BUNDLE")
if IMAP_CA_BUNDLE and not Path(IMAP_CA_BUNDLE).is_file():
    raise EnvError(f"IMAP_CA_BUNDLE: {IMAP_CA_BUNDLE} is not a file.")
# Remote folders (sources/kinds/remote.py): files taken from a folder on the destinations'
# servers, signed in with the same FTP_*, SFTP_*, S3/AWS_*, WEBDAV_* and NEXTCLOUD_* credentials.
# Each <KIND>_INGEST_ENABLED=true makes one system-wide source; its folder is required, and
# must not be the folder documents are delivered to (they would come back in).
FTP_INGEST_ENABLED = env_bool("FTP_INGEST_ENABLED", False)
FTP_INGEST_FOLDER = env_str("FTP_INGEST_FOLDER", "").strip()
FTP_INGEST_DELETE_AFTER_PROCESS = env_bool("FTP_INGEST_DELETE_AFTER_PROCESS", False)
SFTP_INGEST_ENABLED = env_bool("SFTP_INGEST_ENABLED", False)
SFTP_INGEST_FOLDER = env_str("SFTP_INGEST_FOLDER", "").strip()
SFTP_INGEST_DELETE_AFTER_PROCESS = env_bool("SFTP_INGEST_DELETE_AFTER_PROCESS", False)
S3_INGEST_ENABLED = env_bool("S3_INGEST_ENABLED", False)
S3_INGEST_PREFIX = env_str("S3_INGEST_PREFIX", "").strip()
S3_INGEST_DELETE_AFTER_PROCESS = env_bool("S3_INGEST_DELETE_AFTER_PROCESS", False)
WEBDAV_INGEST_ENABLED = env_bool("WEBDAV_INGEST_ENABLED", False)
WEBDAV_INGEST_FOLDER = env_str("WEBDAV_INGEST_FOLDER", "").strip()
WEBDAV_INGEST_DELETE_AFTER_PROCESS = env_bool("WEBDAV_INGEST_DELETE_AFTER_PROCESS", False)
NEXTCLOUD_INGEST_ENABLED = env_bool("NEXTCLOUD_INGEST_ENABLED", False)
NEXTCLOUD_INGEST_FOLDER = env_str("NEXTCLOUD_INGEST_FOLDER", "").strip()
NEXTCLOUD_INGEST_DELETE_AFTER_PROCESS = env_bool("NEXTCLOUD_INGEST_DELETE_AFTER_PROCESS", False)
# Cloud drives sign in with their destination's app and refresh token (DROPBOX_APP_KEY,
# DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN); setting the folder turns the source on.
DROPBOX_INGEST_FOLDER = env_str("DROPBOX_INGEST_FOLDER", "").strip()
DROPBOX_INGEST_ENABLED = env_bool("DROPBOX_INGEST_ENABLED", bool(DROPBOX_INGEST_FOLDER))
DROPBOX_INGEST_DELETE_AFTER_PROCESS = env_bool("DROPBOX_INGEST_DELETE_AFTER_PROCESS", False)
# OneDrive: ONEDRIVE_CLIENT_ID, ONEDRIVE_CLIENT_SECRET, ONEDRIVE_TENANT_ID, ONEDRIVE_REFRESH_TOKEN.
ONEDRIVE_INGEST_FOLDER_PATH = env_str("ONEDRIVE_INGEST_FOLDER_PATH", "").strip()
ONEDRIVE_INGEST_ENABLED = env_bool("ONEDRIVE_INGEST_ENABLED", bool(ONEDRIVE_INGEST_FOLDER_PATH))
ONEDRIVE_INGEST_DELETE_AFTER_PROCESS = env_bool("ONEDRIVE_INGEST_DELETE_AFTER_PROCESS", False)
# Google Drive: the GOOGLE_DRIVE_* account (a service account's key, or GOOGLE_DRIVE_USE_OAUTH);
# the folder is named by its id, the last part of its address in Drive.
GOOGLE_DRIVE_INGEST_FOLDER_ID = env_str("GOOGLE_DRIVE_INGEST_FOLDER_ID", "").strip()
GOOGLE_DRIVE_INGEST_ENABLED = env_bool("GOOGLE_DRIVE_INGEST_ENABLED", bool(GOOGLE_DRIVE_INGEST_FOLDER_ID))
GOOGLE_DRIVE_INGEST_DELETE_AFTER_PROCESS = env_bool("GOOGLE_DRIVE_INGEST_DELETE_AFTER_PROCESS", False)
# Minutes between polls of each remote folder.
REMOTE_INGEST_POLL_INTERVAL = env_int("REMOTE_INGEST_POLL_INTERVAL", 5, minimum=1, maximum=24 * 60)
# A remote file is taken once the server says it has not been modified for this long.
REMOTE_INGEST_SETTLE_SECONDS = env_int("REMOTE_INGEST_SETTLE_SECONDS", 60, minimum=0, maximum=24 * 3600)
# --- end sources ---

# --- Cloud-drive destinations (destinations/kinds/dropbox.py, google_drive.py, onedrive.py) ---
# The app credentials (key and secret, client id and secret) are DocuElevate's registration
# with each provider: they serve the environment's destination and every destination a user
# connects to their own account on the destinations page. The refresh tokens belong to the
# environment's destination; a connect page can supply one instead (docs/destinations.md).
# The external base URL of this server, for the redirect URIs registered with the providers:
# PUBLIC_BASE_URL + /destinations/connect/<kind>/callback.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", f"https://{EXTERNAL_HOSTNAME}").strip().rstrip("/")
_public_base = urlsplit(PUBLIC_BASE_URL)
if _public_base.scheme not in {"http", "https"} or not _public_base.hostname:
    raise EnvError("PUBLIC_BASE_URL must be an http:// or https:// address, e.g. https://docs.example.com.")
if _public_base.username or _public_base.password or _public_base.query or _public_base.fragment:
    raise EnvError("PUBLIC_BASE_URL must not carry a user name, password, query or fragment.")

DROPBOX_APP_KEY = env_str("DROPBOX_APP_KEY", "").strip()
DROPBOX_APP_SECRET = env_str("DROPBOX_APP_SECRET", "").strip()
DROPBOX_REFRESH_TOKEN = env_str("DROPBOX_REFRESH_TOKEN", "").strip()
# Unset, it follows the refresh token: the app key alone only lets people connect their own.
DROPBOX_ENABLED = env_bool("DROPBOX_ENABLED", bool(DROPBOX_REFRESH_TOKEN))
DROPBOX_FOLDER = env_str("DROPBOX_FOLDER", "")
if DROPBOX_ENABLED and not (DROPBOX_APP_KEY and DROPBOX_APP_SECRET):
    raise EnvError("DROPBOX_ENABLED=true needs DROPBOX_APP_KEY and DROPBOX_APP_SECRET (the Dropbox app's).")

# A service account's key file (its JSON text; GOOGLE_DRIVE_CREDENTIALS_JSON_FILE reads a file),
# unless GOOGLE_DRIVE_USE_OAUTH=true signs in as a person with the client and refresh token.
GOOGLE_DRIVE_CREDENTIALS_JSON = env_str("GOOGLE_DRIVE_CREDENTIALS_JSON", "").strip()
GOOGLE_DRIVE_FOLDER_ID = env_str("GOOGLE_DRIVE_FOLDER_ID", "").strip()
GOOGLE_DRIVE_CLIENT_ID = env_str("GOOGLE_DRIVE_CLIENT_ID", "").strip()
GOOGLE_DRIVE_CLIENT_SECRET = env_str("GOOGLE_DRIVE_CLIENT_SECRET", "").strip()
GOOGLE_DRIVE_REFRESH_TOKEN = env_str("GOOGLE_DRIVE_REFRESH_TOKEN", "").strip()
GOOGLE_DRIVE_USE_OAUTH = env_bool("GOOGLE_DRIVE_USE_OAUTH", False)
GOOGLE_DRIVE_ENABLED = env_bool(
    "GOOGLE_DRIVE_ENABLED",
    bool(GOOGLE_DRIVE_REFRESH_TOKEN if GOOGLE_DRIVE_USE_OAUTH else GOOGLE_DRIVE_CREDENTIALS_JSON),
)
if GOOGLE_DRIVE_ENABLED:
    if GOOGLE_DRIVE_USE_OAUTH and not (GOOGLE_DRIVE_CLIENT_ID and GOOGLE_DRIVE_CLIENT_SECRET):
        raise EnvError(
            "GOOGLE_DRIVE_USE_OAUTH=true needs GOOGLE_DRIVE_CLIENT_ID and GOOGLE_DRIVE_CLIENT_SECRET."
        )
    if not GOOGLE_DRIVE_USE_OAUTH and not GOOGLE_DRIVE_CREDENTIALS_JSON:
        raise EnvError(
            "GOOGLE_DRIVE_ENABLED=true needs GOOGLE_DRIVE_CREDENTIALS_JSON (a service account's key), "
            "or GOOGLE_DRIVE_USE_OAUTH=true with a client id, client secret and refresh token."
        )
    if not GOOGLE_DRIVE_USE_OAUTH:
        try:
            _service_account = json.loads(GOOGLE_DRIVE_CREDENTIALS_JSON)
        except ValueError:
            _service_account = None
        if not isinstance(_service_account, dict) or _service_account.get("type") != "service_account":
            raise EnvError(
                "GOOGLE_DRIVE_CREDENTIALS_JSON is not a service account's key: give the JSON key file "
                "as Google made it (its text, or its path as GOOGLE_DRIVE_CREDENTIALS_JSON_FILE)."
            )
        if not GOOGLE_DRIVE_FOLDER_ID:
            # A service account has no storage of its own: it writes into a folder shared with it.
            raise EnvError(
                "GOOGLE_DRIVE_ENABLED=true with a service account needs GOOGLE_DRIVE_FOLDER_ID, a folder "
                "in a shared drive that the service account may edit."
            )

ONEDRIVE_CLIENT_ID = env_str("ONEDRIVE_CLIENT_ID", "").strip()
ONEDRIVE_CLIENT_SECRET = env_str("ONEDRIVE_CLIENT_SECRET", "").strip()
# "common" lets personal and work accounts sign in; a tenant id or domain only that directory's.
ONEDRIVE_TENANT_ID = env_str("ONEDRIVE_TENANT_ID", "").strip() or "common"
ONEDRIVE_REFRESH_TOKEN = env_str("ONEDRIVE_REFRESH_TOKEN", "").strip()
ONEDRIVE_ENABLED = env_bool("ONEDRIVE_ENABLED", bool(ONEDRIVE_REFRESH_TOKEN))
ONEDRIVE_FOLDER_PATH = env_str("ONEDRIVE_FOLDER_PATH", "")
if ONEDRIVE_ENABLED and not (ONEDRIVE_CLIENT_ID and ONEDRIVE_CLIENT_SECRET):
    raise EnvError("ONEDRIVE_ENABLED=true needs ONEDRIVE_CLIENT_ID and ONEDRIVE_CLIENT_SECRET (the app's).")

# Not from the environment: the cloud SDKs' https origins sent elsewhere instead
# (destinations/kinds/transport.py). Empty in production; tests point the providers at a
# local server that replays recorded exchanges.
CLOUD_API_ROUTES: dict[str, str] = {}
# --- end cloud-drive destinations ---

# --- Authentication and security ---------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ADMIN_USERNAME = env_optional("ADMIN_USERNAME")
# Checked here so that every process refuses a placeholder, not only the bootstrap command.
ADMIN_PASSWORD = env_secret("ADMIN_PASSWORD", min_length=12, required=False)
ADMIN_EMAIL = env_str("ADMIN_EMAIL", "")

# Local accounts (django-allauth). Sign-up is closed unless the operator opens it: an
# instance on the internet must not hand out accounts to strangers.
ALLOW_LOCAL_SIGNUP = env_bool("ALLOW_LOCAL_SIGNUP", False)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "ACCOUNT_EMAIL_VERIFICATION", "optional", ("none", "optional", "mandatory")
)
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[DocuElevate] "
# allauth mails "there is no account for this address" to whoever a reset names: anyone
# could send those to any address. The reset page looks the same either way.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = env_bool("ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS", False)
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
# A social login whose verified email belongs to an existing user signs in as that user;
# a stranger's Google account creates nothing unless sign-up is open.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True


def _social_app(prefix: str, **app_settings: Any) -> dict[str, Any] | None:
    """allauth's settings for one provider, from ``<PREFIX>_CLIENT_ID``/``_SECRET``; None when unset."""
    client_id = env_optional(f"{prefix}_CLIENT_ID")
    secret = env_optional(f"{prefix}_CLIENT_SECRET")
    if bool(client_id) != bool(secret):
        raise EnvError(f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET go together; set both or neither.")
    if not client_id:
        return None
    return {"APPS": [{"client_id": client_id, "secret": secret, "settings": app_settings}]}


SOCIALACCOUNT_PROVIDERS = {
    provider: config
    for provider, config in {
        "google": _social_app("GOOGLE"),
        "microsoft": _social_app("MICROSOFT", tenant=env_str("MICROSOFT_TENANT", "common")),
        "github": _social_app("GITHUB"),
    }.items()
    if config is not None
}
INSTALLED_APPS += [f"allauth.socialaccount.providers.{provider}" for provider in SOCIALACCOUNT_PROVIDERS]

# Mail for password resets and address verification. Without EMAIL_HOST the messages are
# written to the log, which is enough on a laptop and visible to the operator elsewhere.
EMAIL_HOST = env_optional("EMAIL_HOST")
EMAIL_BACKEND = f"django.core.mail.backends.{'smtp' if EMAIL_HOST else 'console'}.EmailBackend"
EMAIL_HOST = EMAIL_HOST or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
# The older DocuElevate names (EMAIL_USERNAME, EMAIL_PASSWORD, EMAIL_SENDER) still work.
EMAIL_HOST_USER = env_optional("EMAIL_HOST_USER") or env_str("EMAIL_USERNAME", "")
EMAIL_HOST_PASSWORD = env_optional("EMAIL_HOST_PASSWORD") or env_str("EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise EnvError("EMAIL_USE_TLS and EMAIL_USE_SSL are both true; a mail server speaks one of them.")
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = (
    env_optional("DEFAULT_FROM_EMAIL")
    or env_optional("EMAIL_SENDER")
    or f"DocuElevate <noreply@{EXTERNAL_HOSTNAME}>"
)

# Enterprise single sign-on (mozilla-django-oidc), on when a client id is set. Endpoints come
# from the discovery document unless given one by one; see accounts/oidc.py.
# The AUTHENTIK_* and OAUTH_PROVIDER_NAME names of older DocuElevate installations still work.
OIDC_RP_CLIENT_ID = env_optional("OIDC_RP_CLIENT_ID") or env_optional("AUTHENTIK_CLIENT_ID")
OIDC_ENABLED = OIDC_RP_CLIENT_ID is not None
OIDC_RP_CLIENT_SECRET = env_optional("OIDC_RP_CLIENT_SECRET") or env_optional("AUTHENTIK_CLIENT_SECRET")
OIDC_OP_DISCOVERY_URL = env_optional("OIDC_OP_DISCOVERY_URL") or env_optional("AUTHENTIK_CONFIG_URL")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_optional("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_optional("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_optional("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_optional("OIDC_OP_JWKS_ENDPOINT")
if OIDC_ENABLED:
    if not OIDC_RP_CLIENT_SECRET:
        raise EnvError("OIDC_RP_CLIENT_ID is set but OIDC_RP_CLIENT_SECRET is not.")
    _explicit_endpoints = [
        OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT
    ]  # fmt: skip
    if not OIDC_OP_DISCOVERY_URL and not all(_explicit_endpoints):
        raise EnvError(
            "Single sign-on needs OIDC_OP_DISCOVERY_URL (the provider's .well-known/openid-configuration), "
            "or all of OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT "
            "and OIDC_OP_JWKS_ENDPOINT."
        )
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_PROVIDER_NAME = env_optional("OIDC_PROVIDER_NAME") or env_str("OAUTH_PROVIDER_NAME", "single sign-on")
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_AUTHENTICATE_CLASS = "accounts.oidc.OidcLoginStartView"
OIDC_CALLBACK_CLASS = "accounts.oidc.OidcCallbackView"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?local=1"
ADMIN_GROUP_NAME = env_str("ADMIN_GROUP_NAME", "admin")
SSO_AUTO_LOGIN = env_bool("SSO_AUTO_LOGIN", False)
if SSO_AUTO_LOGIN and not OIDC_ENABLED:
    raise EnvError("SSO_AUTO_LOGIN=true needs single sign-on: set OIDC_RP_CLIENT_ID and its partners.")

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    # Inert unless single sign-on is configured: it only answers OIDC callbacks.
    "accounts.oidc.OidcBackend",
]

# TLS ends at the reverse proxy; trust its headers only when the operator says it exists.
SECURE_PROXY = env_bool("SECURE_PROXY", False)
CSRF_TRUSTED_ORIGINS = [f"https://{EXTERNAL_HOSTNAME}"]
if SECURE_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Orchestrator probes speak plain HTTP to the pod and must not be redirected.
    SECURE_REDIRECT_EXEMPT = [r"^api/diagnostic/healthz/", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
else:
    CSRF_TRUSTED_ORIGINS.append(f"http://{EXTERNAL_HOSTNAME}")
SESSION_COOKIE_HTTPONLY = True
# Links in account mails (password reset, verification) use the scheme users reach us by.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SECURE_PROXY else "http"
SESSION_COOKIE_SAMESITE = "Lax"

SECURITY_HEADERS_ENABLED = env_bool("SECURITY_HEADERS_ENABLED", False)
SECURITY_HEADERS_AT_PROXY = env_bool("SECURITY_HEADERS_AT_PROXY", False)
# Always: they cost nothing and a proxy that sends them too sends the same values.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# The rest only when the application is asked to send them (off: the proxy does).
SECURE_REFERRER_POLICY: str | None = None
if SECURITY_HEADERS_ENABLED:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Asks browsers' preload lists to include the site; an operator may opt out.
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)
    SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
# Features no page of ours uses, refused to every page (docuelevate.security).
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
    "magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), browsing-topics=()"
)
# Scripts only from here and only with the response's nonce: no inline handlers, no
# eval, no other origin, so an injected <script> or onclick= never runs. Style elements
# carry the nonce too; style attributes are allowed (they cannot run code, and Django's
# admin uses them). Frames: our own previews only, and nobody may frame us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src-elem": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "report-uri": "/api/csp-report",  # docuelevate.security.csp_report logs them
    }
}
if SECURITY_HEADERS_ENABLED:
    MIDDLEWARE += ["csp.middleware.CSPMiddleware", "docuelevate.security.PermissionsPolicyMiddleware"]
# HSTS and Referrer-Policy set by the proxy are invisible to Django's deploy check; the operator
# declared them.
SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W022"] if SECURITY_HEADERS_AT_PROXY else []
# Error reports (DEBUG pages, mails to admins) hide passwords inside URLs too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "docuelevate.security.SecretMaskingExceptionReporterFilter"

# --- Rate limits (docuelevate/ratelimit.py) ---------------------------------------------

RATE_LIMITING_ENABLED = env_bool("RATE_LIMITING_ENABLED", True)
RATE_LIMIT_DEFAULT = env_rate("RATE_LIMIT_DEFAULT", "100/m")
RATE_LIMIT_UPLOAD = env_rate("RATE_LIMIT_UPLOAD", "600/m")
RATE_LIMIT_AUTH = env_rate("RATE_LIMIT_AUTH", "10/m")
# django-ratelimit's own switches, for its decorators should anyone use them.
RATELIMIT_ENABLE = RATE_LIMITING_ENABLED
RATELIMIT_USE_CACHE = "ratelimit"
# A counter the cache lost (expired or culled between two calls) lets the request through
# rather than refusing it: the limits protect the service and must not take it down.
RATELIMIT_FAIL_OPEN = True
# The counters must hold across gunicorn workers and processes, so never the per-process
# memory cache. Only django_ratelimit.core is used, not its app: its system check flags
# every backend but memcached and django-redis, including the two chosen here on purpose.
if REDIS_URL:
    # Exact: SET NX and INCR are atomic, and every machine of the deployment shares them.
    CACHES["ratelimit"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
else:
    # Files under WORKDIR, seen by every process on this machine. The increment reads then
    # writes, so two requests in the same instant may count once: close enough on one
    # machine. The cache culls a random third of its files once it holds MAX_ENTRIES.
    CACHES["ratelimit"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(WORKDIR / "cache" / "ratelimit"),
        "OPTIONS": {"MAX_ENTRIES": 2000},
    }

# --- Request bodies -----------------------------------------------------------------------

MAX_REQUEST_BODY_SIZE = env_int("MAX_REQUEST_BODY_SIZE", 1024**2, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_SIZE
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
FILE_UPLOAD_TEMP_DIR = str(SCRATCH_DIR)
# Larger ones are held to MAX_UPLOAD_SIZE while they stream in, not once on disk; the body
# as a whole is bounded before Django by docuelevate.bodylimit (wrapped in docuelevate.wsgi).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "documents.uploads.LimitedTemporaryFileUploadHandler",
]
SCRATCH_DIR.mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    # The token first: a request that names a token is judged by it, never by a session cookie.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        # Single-user mode answers every request as the local user, without a CSRF check
        # (there is no login to forge); otherwise the session, with its CSRF protection.
        "rest_framework.authentication.SessionAuthentication"
        if AUTH_ENABLED
        else "accounts.authentication.SingleUserAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "docuelevate.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "docuelevate.api.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DocuElevate API",
    "DESCRIPTION": "Upload, process, find and download documents.",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: no CDN, so it works under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # A bulk operation's status shares its field name with a document's: each set is named,
    # the document's keeping the name clients know.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "documents.models.documents.DocumentStatus",
        "BulkStatusEnum": "documents.models.bulk.BulkStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "docuelevate.ratelimit.document_rate_limits",
        "docuelevate.middleware.document_database_unavailable",
    ],
}

# --- Internationalisation and static files -----------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "documents": _document_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logging ------------------------------------------------------------------------------

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
# Celery's and kombu's own lines (each task received and done, each beat send, connections):
# `make run` sets WARNING so a newcomer's console shows the application's lines and errors.
LOG_LEVEL_LIBRARIES = env_choice(
    "LOG_LEVEL_LIBRARIES", LOG_LEVEL, ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
# dictConfig, plus Python warnings as log lines (ops.logging.configure_logging).
LOGGING_CONFIG = "ops.logging.configure_logging"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "ops.logging.TextFormatter"},
        "json": {"()": "ops.logging.JsonFormatter"},
    },
    "filters": {
        # Request id, user, route (ops.requestlog) or task id, document (Celery) on every line.
        "log_context": {"()": "ops.logging.ContextFilter"},
        "mask_secrets": {"()": "docuelevate.security.SecretMaskingFilter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["log_context", "mask_secrets"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": LOG_LEVEL, "propagate": True},
        # pikepdf announces its logging bridge at import, on whatever stream the root
        # handler writes to: noise in every log, and not JSON in `--json` outputs.
        "pikepdf": {"level": "WARNING", "propagate": True},
        "celery": {"level": LOG_LEVEL_LIBRARIES, "propagate": True},
        "kombu": {"level": LOG_LEVEL_LIBRARIES, "propagate": True},
        "django_celery_beat": {"level": LOG_LEVEL_LIBRARIES, "propagate": True},
    },
}
# The build (image tag or commit) shown on /status beside VERSION; set by the image build.
BUILD = env_str("BUILD", "")
