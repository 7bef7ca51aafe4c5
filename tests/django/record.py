#!/usr/bin/env python
"""Record the statement sequence of every demo view, directly against PostgreSQL (no proxy),
for the N+1 detector's unit tests: tests/fixtures/django_sequences.json.

    record.py [--out tests/fixtures/django_sequences.json]

Connects where PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD say, migrates and seeds the
database (it is emptied!), then runs each scenario of scenarios.py once with each driver
(psycopg2, psycopg3 with client-side binding, psycopg3 with server-side binding; one child
process per driver, because forcing psycopg2 takes a fresh interpreter), with
opentelemetry's sqlcommenter on and trace ids from a seeded generator, so the file is the
same on every run. `cargo nextest run --test django --run-ignored only record_django_sequences`
does all of it on a throwaway server.

Per view: its name, what pgscope must report for it (as drive.py checks; `match` and
`parent_match` are substrings of the child's and the parent's statement text), and its
requests, each with its statements in the order the server got them:

- `sql`: the statement as Django passed it to the driver, `%s` placeholders, without the
  sqlcommenter comment; `comment`: the comment (as on the wire) or null;
- `params`: the parameter values as strings (arrays as lists), or null;
- `rows`: rows returned or affected (cursor.rowcount; for FETCH the rows fetched);
- `in_transaction`: inside transaction.atomic (BEGIN … COMMIT);
- `connection`: which connection (numbered from 1 in this recording): a new one per request
  (CONN_MAX_AGE=0) except in persistent_pk_lookups;
- `source`: `django` (through the ORM), `driver` (BEGIN/COMMIT the driver sends around
  atomic blocks; FETCH/CLOSE of a server-side cursor: these carry no comment), or
  `connection` (Django's `SELECT set_config('TimeZone', …)` when a new connection's time zone
  is not UTC);
- `wire`: the text each driver sends. `psycopg2` and `psycopg3` (client-side binding):
  literals interpolated (cursor.mogrify / ClientCursor.mogrify); `psycopg3-server-binding`:
  `{"sql": "… $1 …", "params": [...], "formats": [...]}` as in Parse/Bind (psycopg 3 sends
  integers in binary: those values are `\\x<hex>`). `.iterator()`'s statement goes out as
  `DECLARE "<cursor>" NO SCROLL CURSOR WITH HOLD FOR …`.

When the drivers make Django send different sequences for a view (they do not today), the
view has `requests_by_driver` instead of `requests`.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import scenarios as sc  # noqa: E402

DRIVERS = ["psycopg2", "psycopg3", "psycopg3-server-binding"]
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "fixtures", "django_sequences.json")
# Django names server-side cursors after the thread: made the same on every run.
CURSOR_NAME = re.compile(r"_django_curs_\d+_")
FIXED_CURSOR_NAME = "_django_curs_140000000000000_"
SAME_ACROSS_DRIVERS = ("sql", "comment", "params", "rows", "in_transaction", "connection", "source")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--driver", choices=DRIVERS, help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()
    if args.driver:
        with open(args.out, "w") as f:
            json.dump(record_one(args.driver), f)
        return 0

    manage = [sys.executable, os.path.join(HERE, "manage.py")]
    subprocess.run(manage + ["migrate", "--verbosity", "0"], check=True)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for driver in DRIVERS:
            out = os.path.join(tmp, f"{driver}.json")
            env = {**os.environ, "DRIVER": driver}
            subprocess.run([sys.executable, os.path.abspath(__file__), "--driver", driver, "--out", out], env=env, check=True)
            with open(out) as f:
                runs[driver] = json.load(f)
        print(f"recorded {driver}: {sum(len(r['statements']) for v in runs[driver]['views'] for r in v['requests'])} statements", file=sys.stderr)
    fixture = merge(runs)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(fixture, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def merge(runs):
    first = runs[DRIVERS[0]]
    views = []
    for i, view in enumerate(first["views"]):
        per_driver = {d: runs[d]["views"][i]["requests"] for d in DRIVERS}
        entry = {k: view[k] for k in ("name", "about", "route", "persistent_connection", "expected")}
        if all(same_requests(per_driver[DRIVERS[0]], per_driver[d]) for d in DRIVERS[1:]):
            requests = []
            for j, req in enumerate(per_driver[DRIVERS[0]]):
                statements = []
                for k, st in enumerate(req["statements"]):
                    merged = {key: st[key] for key in SAME_ACROSS_DRIVERS}
                    merged["wire"] = {d: per_driver[d][j]["statements"][k]["wire"] for d in DRIVERS}
                    statements.append(merged)
                requests.append({**{k: req[k] for k in ("path", "route", "traceparent")}, "statements": statements})
            entry["requests"] = requests
        else:
            entry["requests_by_driver"] = per_driver
        views.append(entry)
    return {
        "about": __doc__.split("\n\n", 2)[2].strip(),
        "generated_by": "tests/django/record.py",
        "versions": first["versions"],
        "n1_threshold": sc.N1_THRESHOLD,
        "drivers": DRIVERS,
        "views": views,
    }


def same_requests(a, b):
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra["statements"]) != len(rb["statements"]):
            return False
        for sa, sb in zip(ra["statements"], rb["statements"]):
            if any(sa[k] != sb[k] for k in SAME_ACROSS_DRIVERS):
                return False
    return True


# --- the child process: one driver ---


def record_one(driver):
    os.environ.update({"DRIVER": driver, "SQLCOMMENTER": "on", "SQLCOMMENTER_DETERMINISTIC_IDS": "on", "CONN_MAX_AGE": "0"})
    os.environ.pop("PREPARE_THRESHOLD", None)
    from pgscope_demo import recording

    recording.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.backends.signals import connection_created
    from django.db.models.sql import compiler
    from django.urls import resolve

    call_command("seed", verbosity=0)
    connection.close()

    rec = Recorder(driver, connection)
    connection_created.connect(rec.connection_created)
    rec.patch(compiler)
    recording.Statements.on_execute = rec.on_execute

    client = recording.Requests()
    views = []
    for s in sc.SCENARIOS:
        client.persistent = s["persistent"]
        requests = []
        for path in s["paths"]:
            log = recording.Statements.log = rec.log = []
            response = client.get(path)
            recording.Statements.log = rec.log = None
            assert response.status_code == 200, (path, response.status_code)
            statements = [rec.finish(st) for st in log]
            comments = [st["comment"] for st in statements if st["comment"]]
            m = re.search(r"traceparent='([^']*)'", comments[0]) if comments else None
            requests.append(
                {
                    "path": path,
                    "route": resolve(path).route,
                    "traceparent": m.group(1) if m else None,
                    "statements": statements,
                }
            )
        client.persistent = False
        views.append(
            {
                "name": s["name"],
                "about": s["about"],
                "route": s["route"],
                "persistent_connection": s["persistent"],
                "expected": [
                    {
                        k: e[k]
                        for k in ("kind", "child_table", "parent_table", "orm", "model", "field", "burst", "bursts", "queries", "match", "parent_match")
                    }
                    | {"route": s["route"]}
                    for e in s["expected"]
                ],
                "requests": requests,
            }
        )
    client.close()
    return {"views": views, "versions": versions()}


def versions():
    from importlib.metadata import version

    out = {}
    for name in ("Django", "psycopg2-binary", "psycopg", "opentelemetry-instrumentation-django"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = None
    return out


class Recorder:
    """Adds to the middleware's statement log what does not go through execute_wrapper:
    BEGIN/COMMIT, server-side cursor FETCH/CLOSE, the time zone set on a new connection; and
    the wire text of each statement for this driver."""

    def __init__(self, driver, connection):
        self.driver = driver
        self.connection = connection
        self.log = None
        self.connections = 0
        self.pending_begin = False
        self.in_transaction = False
        self._wrap_transactions()

    # -- hooks --

    def connection_created(self, sender, connection, **kwargs):
        self.connections += 1

    def _wrap_transactions(self):
        conn = self.connection
        set_autocommit, commit, rollback = conn._set_autocommit, conn._commit, conn._rollback
        configure_timezone = conn._configure_timezone

        def _set_autocommit(autocommit):
            set_autocommit(autocommit)
            if not autocommit:
                self.pending_begin = True

        def _commit():
            self._end("COMMIT")
            return commit()

        def _rollback():
            self._end("ROLLBACK")
            return rollback()

        def _configure_timezone(dbapi_connection):
            changed = configure_timezone(dbapi_connection)
            if changed and self.log is not None:
                sql = conn.ops.set_time_zone_sql()
                self.log.append(
                    self.statement(sql, [conn.timezone_name], rows=1, source="connection", connection=self.connections + 1)
                )
            return changed

        conn._set_autocommit = _set_autocommit
        conn._commit = _commit
        conn._rollback = _rollback
        conn._configure_timezone = _configure_timezone

    def _end(self, sql):
        if self.in_transaction and self.log is not None:
            self.log.append(self.statement(sql, None, rows=0, source="driver", in_transaction=True))
        self.in_transaction = self.pending_begin = False

    def on_execute(self, cursor, sql, params):
        """Called by recording.Statements after each ORM statement, before it is logged."""
        if self.pending_begin:
            # The driver sends BEGIN just before the first statement of the transaction.
            self.log.append(self.statement("BEGIN", None, rows=0, source="driver", in_transaction=True))
            self.pending_begin = False
            self.in_transaction = True
        name = getattr(cursor.cursor, "name", None)
        wire = self.wire(sql, params)
        extra = {"connection": self.connections, "source": "django", "wire": wire}
        if name:
            extra["cursor"] = name
            extra["rows"] = 0
            extra["wire"] = self.declare(name, wire)
        return extra

    def patch(self, compiler):
        """Log the FETCHes and the CLOSE of server-side cursors (`.iterator()`), which the
        driver sends from fetchmany() and close(), outside execute_wrapper."""
        cursor_iter = compiler.cursor_iter
        recorder = self

        def logged_cursor_iter(cursor, sentinel, col_count, itersize):
            name = getattr(cursor.cursor, "name", None)
            rows = iter(cursor_iter(cursor, sentinel, col_count, itersize))
            try:
                for chunk in rows:
                    recorder.fetch(name, itersize, len(chunk))
                    yield chunk
                recorder.fetch(name, itersize, 0)  # the last FETCH returns nothing
            finally:
                if name and recorder.log is not None:
                    recorder.log.append(recorder.statement(f'CLOSE "{name}"', None, rows=0, source="driver"))

        compiler.cursor_iter = logged_cursor_iter

    def fetch(self, name, itersize, n):
        if name and self.log is not None:
            self.log.append(self.statement(f'FETCH FORWARD {itersize} FROM "{name}"', None, rows=n, source="driver"))

    # -- building entries --

    def statement(self, sql, params, rows, source, in_transaction=None, connection=None):
        from pgscope_demo.recording import param_text

        return {
            "sql": sql,
            "params": param_text(list(params)) if params is not None else None,
            "rows": rows,
            "in_transaction": self.connection.in_atomic_block if in_transaction is None else in_transaction,
            "connection": self.connections if connection is None else connection,
            "source": source,
            "wire": self.wire(sql, params),
        }

    def finish(self, st):
        from pgscope_demo.recording import split_comment

        sql, comment = split_comment(st["sql"])
        out = {
            "sql": fix_names(sql),
            "comment": wire_comment(comment),
            "params": st["params"],
            "rows": st["rows"],
            "in_transaction": st["in_transaction"],
            "connection": st["connection"],
            "source": st["source"],
            "wire": fix_names(st["wire"]),
        }
        if "cursor" in st:
            out["cursor"] = fix_names(st["cursor"])
        return out

    def wire(self, sql, params):
        raw = self.connection.connection
        if self.driver == "psycopg2":
            with raw.cursor() as c:
                return c.mogrify(sql, params).decode()
        import psycopg

        if self.driver == "psycopg3":
            return psycopg.ClientCursor(raw).mogrify(sql, params)
        from psycopg._queries import PostgresQuery

        query = PostgresQuery(psycopg.adapt.Transformer(raw))
        query.convert(sql, params)
        values = formats = None
        if query.params is not None:
            text = psycopg.pq.Format.TEXT
            values = [
                None if v is None else (bytes(v).decode() if f == text else "\\x" + bytes(v).hex())
                for v, f in zip(query.params, query.formats)
            ]
            formats = ["text" if f == text else "binary" for f in query.formats]
        return {"sql": query.query.decode(), "params": values, "formats": formats}

    def declare(self, name, wire):
        prefix = f'DECLARE "{name}" NO SCROLL CURSOR WITH HOLD FOR '
        if isinstance(wire, dict):
            return {**wire, "sql": prefix + wire["sql"]}
        return prefix + wire


def wire_comment(comment):
    # Django hands the driver `%%`; every statement here has parameters (maybe none: `()`),
    # so the driver's formatting turns it into `%` on the wire.
    return comment.replace("%%", "%") if comment else None


def fix_names(value):
    if isinstance(value, str):
        return CURSOR_NAME.sub(FIXED_CURSOR_NAME, value)
    if isinstance(value, dict):
        return {k: fix_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_names(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
