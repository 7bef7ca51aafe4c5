"""Test instrumentation shared by drive.py and record.py (not part of the demo application).

- `setup()`: point the settings at a server, import Django and set it up.
- `Requests`: the test client used the way a WSGI server uses Django, so that CONN_MAX_AGE
  does what it does in production (see its docstring).
- `Statements`: a middleware, appended last so that its `connection.execute_wrapper` is the
  innermost one (inside opentelemetry's sqlcommenter wrapper), that logs each statement the
  view sends: SQL as passed to the driver, parameters, rows, and whether a transaction is open.
"""

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIDDLEWARE = "pgscope_demo.recording.Statements"

# A trailing sqlcommenter comment, as opentelemetry appends it: ` /*key='value',...*/`.
COMMENT = re.compile(r"\s*/\*(?:[^*]|\*(?!/))*\*/\s*$")


def setup(host=None, port=None):
    """Import and set up Django; `host`/`port` override PGHOST/PGPORT. Returns the settings."""
    if host is not None:
        os.environ["PGHOST"] = host
    if port is not None:
        os.environ["PGPORT"] = str(port)
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "pgscope_demo.settings"
    import django

    django.setup()
    from django.conf import settings

    # Last in the list: innermost, so it sees the SQL exactly as the driver gets it.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE] + [MIDDLEWARE]
    return settings


def split_comment(sql):
    """(statement, trailing sqlcommenter comment or None)."""
    m = COMMENT.search(sql)
    if not m:
        return sql, None
    return sql[: m.start()], sql[m.start() :].strip()


def param_text(value):
    """A parameter value as text: str() of it (lists and tuples element by element)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [param_text(v) for v in value]
    return str(value)


class Statements:
    """Middleware: appends one dict per statement of the request to `Statements.log` (a list
    the caller sets before the request, or None to log nothing). `Statements.on_execute`, if
    set, is called as on_execute(cursor, sql, params) after each statement and its result
    merged into the dict (record.py adds the wire text with it)."""

    log = None
    on_execute = None

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection

        with connection.execute_wrapper(self._record):
            return self.get_response(request)

    @classmethod
    def _record(cls, execute, sql, params, many, context):
        from django.db import connection

        started = time.monotonic()
        result = execute(sql, params, many, context)
        if cls.log is None:
            return result
        cursor = context["cursor"]
        entry = {
            "sql": str(sql),
            "params": param_text(list(params)) if params is not None else None,
            "many": many,
            "rows": cursor.rowcount,
            "in_transaction": connection.in_atomic_block,
            "seconds": time.monotonic() - started,
        }
        if cls.on_execute is not None:
            entry.update(cls.on_execute(cursor, sql, params) or {})
        cls.log.append(entry)
        return result


class Requests:
    """django.test.Client, used as a WSGI server uses Django.

    The test client disconnects `close_old_connections` from request_started and
    request_finished while it runs a request (so that TestCase transactions survive), which
    means that with it CONN_MAX_AGE=0 would NOT close the connection after each request.
    A WSGI server does close it. So each `get` calls close_old_connections() before and after
    the request, exactly what those two signals do in production.

    `persistent=True` makes the requests until `persistent=False` share one connection, as
    CONN_MAX_AGE=None does, whatever the setting; `idle_gap` seconds are waited after each
    request whose connection stays open (pgscope tells requests on one connection apart by
    their traceparent, or else by the idle time between them).
    """

    def __init__(self, idle_gap=0.0):
        from django.db import connection
        from django.test import Client

        self.client = Client()
        self.idle_gap = idle_gap
        self.default_max_age = connection.settings_dict["CONN_MAX_AGE"]
        self._persistent = False

    @property
    def persistent(self):
        return self._persistent

    @persistent.setter
    def persistent(self, on):
        from django.db import connection

        if on == self._persistent:
            return
        self._persistent = on
        if on:
            # Read when the next connection opens (the last request closed its own, unless
            # every connection is persistent anyway).
            connection.settings_dict["CONN_MAX_AGE"] = None
        else:
            connection.settings_dict["CONN_MAX_AGE"] = self.default_max_age
            if self.default_max_age is not None:
                connection.close()

    def get(self, path):
        from django.db import close_old_connections, connection

        close_old_connections()  # request_started
        response = self.client.get(path)
        close_old_connections()  # request_finished
        if connection.connection is not None and self.idle_gap:
            time.sleep(self.idle_gap)
        return response

    def close(self):
        from django.db import connection

        connection.close()
