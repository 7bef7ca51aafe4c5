"""psycopg 3 pipeline mode: many statements before one Sync, a failure mid-pipeline, recovery.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import psycopg

from _common import canon, dsn, emit, rows

out = {}
with psycopg.connect(dsn(), autocommit=True) as conn:
    # 1. One pipeline, one Sync: inserts with RETURNING and a select, results read afterwards.
    with conn.pipeline():
        curs = []
        for i, name in enumerate(["alpha", "beta", "gamma"]):
            cur = conn.cursor()
            cur.execute(
                "INSERT INTO items (name, qty) VALUES (%s, %s) RETURNING id, name, qty",
                (name, (i + 1) * 10),
            )
            curs.append(cur)
        upd = conn.cursor()
        upd.execute("UPDATE items SET qty = qty + %s WHERE qty >= %s", (1, 20))
        sel = conn.cursor()
        sel.execute("SELECT id, name, qty FROM items ORDER BY id")
    out["returning"] = [rows(c.fetchall()) for c in curs]
    out["updated"] = upd.rowcount
    out["selected"] = rows(sel.fetchall())

    # 2. A failure mid-pipeline: the insert before it is in the same implicit transaction
    # (rolled back), the statements after it are skipped by the server until the Sync.
    before = conn.cursor()
    after = conn.cursor()
    try:
        with conn.pipeline():
            before.execute(
                "INSERT INTO items (name, qty) VALUES (%s, %s) RETURNING id", ("delta", 4)
            )
            conn.execute("SELECT 1 / (qty - qty) FROM items WHERE name = %s", ("alpha",))
            after.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("epsilon", 5))
        out["failure"] = "none raised"
    except psycopg.Error as e:
        out["failure"] = e.sqlstate
    try:
        after.fetchall()
        out["after_failure"] = "fetched"
    except psycopg.Error as e:
        out["after_failure"] = type(e).__name__

    # 3. Recovery: the connection works again, in and out of pipelines; explicit sync points
    # separate implicit transactions, so a failure after a sync keeps what came before it.
    # A statement the server cannot parse, mid-pipeline.
    try:
        with conn.pipeline():
            conn.execute("SELECT qty FROM items WHERE name = %s", ("beta",))
            conn.execute("SELEC broken")
            conn.execute("SELECT qty FROM items WHERE name = %s", ("gamma",))
        out["parse_failure"] = "none raised"
    except psycopg.Error as e:
        out["parse_failure"] = e.sqlstate
    out["status_after_failure"] = conn.info.transaction_status.name
    with conn.pipeline() as p:
        conn.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("zeta", 6))
        p.sync()
        cur = conn.execute("SELECT count(*), sum(qty) FROM items")
    out["recovered"] = canon(cur.fetchone())
    try:
        with conn.pipeline() as p:
            conn.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("eta", 7))
            p.sync()
            conn.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("alpha", 8))
            conn.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("theta", 9))
        out["second_failure"] = "none raised"
    except psycopg.Error as e:
        out["second_failure"] = e.sqlstate
    out["final"] = rows(conn.execute("SELECT name, qty FROM items ORDER BY id").fetchall())

emit(out)
