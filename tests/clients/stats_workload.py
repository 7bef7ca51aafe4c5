"""The psycopg part of tests/stats.rs's workload: the same lookup psql runs, sent by psycopg 3
with server-side binding (`$1` on the wire) and by psycopg2 (literals interpolated), so that
pgscope must give all of them one fingerprint. Prints the number of statements it ran."""

import json
import sys

import psycopg
import psycopg2

dsn = sys.argv[1]
ran = 0
with psycopg.connect(dsn, autocommit=True) as conn:
    # A prepared statement, executed 10 times with different values.
    for i in range(31, 41):
        rows = conn.execute(
            "SELECT label FROM stats_items WHERE id = %s", (i,), prepare=True
        ).fetchall()
        assert len(rows) == 1, rows
        ran += 1

conn2 = psycopg2.connect(dsn)
conn2.autocommit = True
with conn2.cursor() as cur:
    for i in range(41, 46):
        cur.execute("SELECT label FROM stats_items WHERE id = %s", (i,))
        assert len(cur.fetchall()) == 1
        ran += 1
conn2.close()
print(json.dumps({"ran": ran}))
