"""psycopg 3 server-side (named) cursors: DECLARE with parameters, FETCH FORWARD in chunks,
scrolling, and a cursor that outlives its transaction (WITH HOLD).
"""

import psycopg

from _common import canon, dsn, emit, rows

QUERY = "SELECT g, md5(g::text), g %% %s = 0 FROM generate_series(1, %s) g"
out = {}
with psycopg.connect(dsn()) as conn:
    with conn.cursor(name="chunked") as cur:
        cur.execute(QUERY, (7, 25))
        chunks = []
        while True:
            chunk = cur.fetchmany(10)
            if not chunk:
                break
            chunks.append(rows(chunk))
        out["chunks"] = chunks
    with conn.cursor(name="itersize") as cur:
        cur.itersize = 4
        cur.execute(QUERY, (3, 9))
        out["iterated"] = [canon(r[0]) for r in cur]
    with conn.cursor(name="scrolled", scrollable=True) as cur:
        cur.execute(QUERY, (2, 6))
        out["first"] = rows(cur.fetchmany(2))
        cur.scroll(3, mode="absolute")
        out["after_scroll"] = rows(cur.fetchall())
    conn.commit()
    with conn.cursor(name="held", withhold=True) as cur:
        cur.execute("SELECT g FROM generate_series(1, %s) g", (5,))
        conn.commit()
        out["held_after_commit"] = rows(cur.fetchall())
    # A cursor whose query fails when it is fetched from.
    try:
        with conn.cursor(name="failing") as cur:
            cur.execute("SELECT 10 / (5 - g) FROM generate_series(1, %s) g", (8,))
            out["failing_first"] = rows(cur.fetchmany(2))
            cur.fetchall()
        out["failure"] = "none raised"
    except psycopg.Error as e:
        out["failure"] = e.sqlstate
    conn.rollback()
emit(out)
