"""psycopg 3 executemany (sent as one pipeline of Bind/Execute), with and without RETURNING,
and a failing batch.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import psycopg

from _common import canon, dsn, emit, rows

INSERT = "INSERT INTO items (name, qty) VALUES (%s, %s)"
BULK = 20000
out = {}
with psycopg.connect(dsn()) as conn:
    cur = conn.cursor()
    cur.executemany(INSERT, [(f"n{i}", i) for i in range(1, 9)])
    out["rowcount"] = cur.rowcount
    cur.executemany(
        "UPDATE items SET qty = qty * 2 WHERE qty = %s RETURNING name, qty",
        [(2,), (4,), (99,), (2,)],
        returning=True,
    )
    results = []
    while True:
        results.append(rows(cur.fetchall()))
        if not cur.nextset():
            break
    out["returning"] = results
    conn.commit()
    # A batch whose fourth row violates the unique constraint: none of it is kept.
    try:
        cur.executemany(INSERT, [("m1", 1), ("m2", 2), ("m3", 3), ("n1", 4), ("m5", 5)])
        out["failure"] = "none raised"
    except psycopg.Error as e:
        out["failure"] = e.sqlstate
    conn.rollback()
    out["items"] = rows(cur.execute("SELECT name, qty FROM items ORDER BY id").fetchall())
    conn.commit()
    # A large batch: thousands of statements pipelined through the proxy.
    cur.executemany(INSERT, [(f"bulk{i}", i) for i in range(BULK)])
    conn.commit()
    out["bulk"] = canon(cur.execute(
        "SELECT count(*), sum(qty) FROM items WHERE name LIKE %s", ("bulk%",)
    ).fetchone())
    conn.commit()
emit(out)
