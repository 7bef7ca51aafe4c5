#!/usr/bin/env python
"""One client requesting a page of the Django demo project for a while; pgbench's summary lines.

    django_load.py --port PORT --route ROUTE --duration SECONDS

`bench/relay.sh` runs it as a workload next to pgbench's: the whole Django request cycle
(URL resolution, the view, its queries through the driver, the template) through
`django.test.Client`, one request after another, against 127.0.0.1:PORT (PostgreSQL, pgbouncer
or pgscope). The project is `tests/django` (its README), on a database that `manage.py migrate`
and `manage.py seed` have filled. The settings come from the environment as for manage.py
(DRIVER, CONN_MAX_AGE, PGDATABASE, PGUSER, ...); CONN_MAX_AGE defaults to None here, so the
connection stays open from one request to the next as with persistent connections in
production, and `close_old_connections()` runs around every request as a WSGI server's signals
make it run.

It prints the lines of pgbench's summary that relay.sh reads, a transaction being one request:

    number of transactions actually processed: N
    number of failed transactions: F (P%)
    latency average = L ms
    tps = T (without initial connection time)

The first request (it opens the connection) is made before the clock starts, as pgbench leaves
its connection time out. A response other than 200 counts as a failed transaction, and the
run exits 1 if there were any.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(os.path.dirname(HERE), "tests", "django")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="where Django connects on 127.0.0.1")
    p.add_argument("--route", required=True, help="the page, as a path under / (e.g. n1/fk/)")
    p.add_argument("--duration", type=float, required=True, help="seconds to keep requesting it")
    return p.parse_args()


def main():
    args = parse_args()
    os.environ["PGHOST"] = "127.0.0.1"
    os.environ["PGPORT"] = str(args.port)
    os.environ.setdefault("CONN_MAX_AGE", "None")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgscope_demo.settings")
    sys.path.insert(0, DEMO)

    import django

    django.setup()
    from django.db import close_old_connections
    from django.test import Client

    client = Client()
    path = "/" + args.route.lstrip("/")

    def request():
        close_old_connections()
        status = client.get(path).status_code
        close_old_connections()
        return status

    first = request()
    if first != 200:
        print(f"django_load.py: GET {path} answered {first}", file=sys.stderr)
        return 1
    done = failed = 0
    start = time.perf_counter()
    deadline = start + args.duration
    now = start
    while now < deadline:
        if request() != 200:
            failed += 1
        done += 1
        now = time.perf_counter()
    elapsed = now - start
    print(f"number of transactions actually processed: {done}")
    print(f"number of failed transactions: {failed} ({100.0 * failed / done:.3f}%)")
    print(f"latency average = {1000.0 * elapsed / done:.3f} ms")
    print(f"tps = {done / elapsed:.6f} (without initial connection time)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
