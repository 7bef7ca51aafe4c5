"""psycopg 3 server-side binding with named prepared statements (`_pg3_N`).

Table (made by the test): items(id serial primary key, name text unique, qty int) with rows
('a', 1) … ('j', 10).
"""

import psycopg

from _common import canon, dsn, emit, rows

SELECT = "SELECT name, qty FROM items WHERE qty > %s ORDER BY id LIMIT 3"
UPDATE = "UPDATE items SET qty = qty + %s WHERE name = %s"
out = {}

# prepare_threshold=0: every statement with parameters is prepared at its first execution
# and then executed by name (Bind/Execute only).
with psycopg.connect(dsn(), prepare_threshold=0, autocommit=True) as conn:
    results = []
    for threshold in [0, 5, 0, 7, 5]:
        results.append(rows(conn.execute(SELECT, (threshold,)).fetchall()))
    out["threshold0_selects"] = results
    updated = []
    with conn.transaction():
        for name in ["a", "b", "a"]:
            updated.append(conn.execute(UPDATE, (100, name)).rowcount)
    out["threshold0_updates"] = updated
    # An error in a prepared statement's execution: the statement stays usable.
    try:
        conn.execute("SELECT 10 / qty FROM items WHERE name = %s", ("a",)).fetchall()
        conn.execute("UPDATE items SET qty = 0 WHERE name = %s", ("c",))
        conn.execute("SELECT 10 / qty FROM items WHERE name = %s", ("c",)).fetchall()
        out["division"] = "no error"
    except psycopg.Error as e:
        out["division"] = e.sqlstate
    out["division_again"] = rows(
        conn.execute("SELECT 10 / qty FROM items WHERE name = %s", ("a",)).fetchall()
    )
    # What the server holds: each statement prepared once, under psycopg's names.
    out["server_prepared"] = rows(conn.execute(
        "SELECT name, statement FROM pg_prepared_statements ORDER BY name", prepare=False
    ).fetchall())

# The default threshold with prepare=True / prepare=False per execution, and a tiny cache
# (prepared_max=2) so that psycopg closes statements it evicts and prepares new ones.
with psycopg.connect(dsn(), autocommit=True) as conn:
    conn.prepared_max = 2
    got = []
    for q in range(3):
        got.append(rows(conn.execute(SELECT, (q,), prepare=True).fetchall()))
    got.append(rows(conn.execute(SELECT, (1,), prepare=False).fetchall()))
    got.append(canon(conn.execute("SELECT %s::int + 1", (41,), prepare=True).fetchone()))
    got.append(canon(conn.execute("SELECT %s::text || 'x'", ("y",), prepare=True).fetchone()))
    # SELECT was evicted from the cache (closed on the server): it is prepared again.
    got.append(rows(conn.execute(SELECT, (2,), prepare=True).fetchall()))
    got.append(rows(conn.execute(SELECT, (2,), prepare=True).fetchall()))
    out["prepare_flag"] = got

emit(out)
