"""Settings of the pgscope demo project, all from the environment.

| variable | default | meaning |
| --- | --- | --- |
| `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD` | `127.0.0.1`, `5432`, `app`, `postgres`, none | where Django connects: pgscope, or PostgreSQL itself for `migrate`/`seed` |
| `DRIVER` | `psycopg3` | `psycopg2`, `psycopg3` (client-side binding, Django's default) or `psycopg3-server-binding` (`OPTIONS["server_side_binding"] = True`) |
| `CONN_MAX_AGE` | `0` | seconds, or `None` for connections that live forever (Django's default `0` closes the connection at the end of each request) |
| `SQLCOMMENTER` | `off` | `on`: opentelemetry's Django instrumentation with its sqlcommenter middleware appends `/*controller=…,db_driver=…,framework=…,route=…,traceparent=…*/` to every statement |
| `PREPARE_THRESHOLD` | none | psycopg 3's `prepare_threshold` (Django turns server-side prepared statements off unless this is set) |

Forcing psycopg2. Django's `postgresql` backend uses psycopg 3 whenever `import psycopg`
succeeds (django/db/backends/postgresql/psycopg_any.py) and falls back to psycopg2 only when
it fails. With both installed, `DRIVER=psycopg2` makes it fail on purpose: it puts `None` in
`sys.modules["psycopg"]` before any backend module is imported (the settings module is read
first), so `import psycopg` raises ImportError and the backend loads psycopg2. The ENGINE stays
`django.db.backends.postgresql`. `library.apps` checks at start-up that the backend really
uses the driver asked for.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVERS = ("psycopg2", "psycopg3", "psycopg3-server-binding")
DRIVER = os.environ.get("DRIVER", "psycopg3")
if DRIVER not in DRIVERS:
    raise ImproperlyConfigured(f"DRIVER={DRIVER!r}: expected one of {', '.join(DRIVERS)}")
if DRIVER == "psycopg2":
    if sys.modules.get("psycopg") is not None:
        raise ImproperlyConfigured("DRIVER=psycopg2, but psycopg (3) is already imported")
    sys.modules["psycopg"] = None  # `import psycopg` now raises ImportError


def _on_off(name, default="off"):
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected on or off")


def _conn_max_age():
    value = os.environ.get("CONN_MAX_AGE", "0").strip()
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"CONN_MAX_AGE={value!r}: expected seconds or None") from None


SQLCOMMENTER = _on_off("SQLCOMMENTER")
# Only for tests/django/record.py: trace and span ids from a seeded generator, so that the recorded
# traceparent values are the same on every run.
SQLCOMMENTER_DETERMINISTIC_IDS = _on_off("SQLCOMMENTER_DETERMINISTIC_IDS")

SECRET_KEY = "pgscope-demo-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = ["library"]
# No sessions, auth or messages: the only statements a request sends are the view's own.
# With SQLCOMMENTER=on, library.apps puts opentelemetry's two middlewares in front.
MIDDLEWARE = []
ROOT_URLCONF = "pgscope_demo.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]

_options = {}
if DRIVER == "psycopg3-server-binding":
    _options["server_side_binding"] = True
if os.environ.get("PREPARE_THRESHOLD"):
    if DRIVER == "psycopg2":
        raise ImproperlyConfigured("PREPARE_THRESHOLD is a psycopg 3 option")
    _options["prepare_threshold"] = int(os.environ["PREPARE_THRESHOLD"])

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "NAME": os.environ.get("PGDATABASE", "app"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "CONN_MAX_AGE": _conn_max_age(),
        "OPTIONS": _options,
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# opentelemetry's sqlcommenter: controller, db_driver, framework, route and traceparent (the
# defaults, but app_name: the URLs have no namespace, so it would be empty anyway).
SQLCOMMENTER_WITH_APP_NAME = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
