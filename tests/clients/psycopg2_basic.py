"""psycopg2: a transaction of inserts and selects, execute_values, a named (server-side)
cursor with itersize, a unique violation then rollback and carry on, copy_expert both ways.
psycopg2 binds on the client and sends everything with the simple protocol.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import io

import psycopg2
import psycopg2.errors
import psycopg2.extras

from _common import canon, dsn, emit, rows

out = {}
conn = psycopg2.connect(dsn())
try:
    cur = conn.cursor()
    # One transaction: BEGIN is sent by psycopg2 before the first statement.
    cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s) RETURNING id", ("one", 1))
    out["returning"] = rows(cur.fetchall())
    cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s), (%s, %s)", ("two", 2, "it's", 3))
    out["insert_rowcount"] = cur.rowcount
    cur.execute("SELECT id, name, qty FROM items WHERE qty >= %(min)s ORDER BY id", {"min": 2})
    out["select"] = rows(cur.fetchall())
    conn.commit()

    # execute_values: one INSERT per page of rows.
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO items (name, qty) VALUES %s",
        [(f"v{i}", i * 10) for i in range(1, 8)],
        page_size=3,
    )
    out["execute_values_rowcount"] = cur.rowcount
    got = psycopg2.extras.execute_values(
        cur,
        "UPDATE items SET qty = data.q FROM (VALUES %s) AS data (n, q) "
        "WHERE items.name = data.n RETURNING items.name, items.qty",
        [("v1", 11), ("v2", 22)],
        fetch=True,
    )
    out["execute_values_fetch"] = sorted(rows(got))
    conn.commit()

    # A named cursor: DECLARE, then FETCH FORWARD itersize rows at a time.
    named = conn.cursor("named_cur")
    named.itersize = 4
    named.execute("SELECT name, qty FROM items ORDER BY id")
    out["named"] = [canon(list(r)) for r in named]
    named.close()
    conn.commit()

    # A unique violation: the transaction is aborted until rollback, then work goes on.
    try:
        cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("one", 100))
        out["violation"] = "none raised"
    except psycopg2.errors.UniqueViolation as e:
        out["violation"] = e.pgcode
    try:
        cur.execute("SELECT 1")
        out["in_failed_transaction"] = "none raised"
    except psycopg2.Error as e:
        out["in_failed_transaction"] = e.pgcode
    conn.rollback()
    cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", ("after rollback", 5))
    conn.commit()

    # COPY both ways.
    data = io.StringIO("".join(f"copied{i}\t{i}\n" for i in range(1, 101)))
    cur.copy_expert("COPY items (name, qty) FROM STDIN", data)
    out["copy_in"] = cur.rowcount
    buf = io.StringIO()
    cur.copy_expert("COPY (SELECT name, qty FROM items ORDER BY id) TO STDOUT WITH CSV HEADER", buf)
    text = buf.getvalue()
    out["copy_out_lines"] = len(text.splitlines())
    out["copy_out_head"] = text.splitlines()[:4]
    out["copy_out_rowcount"] = cur.rowcount
    conn.commit()
    # A COPY the server rejects.
    try:
        cur.copy_expert("COPY items (name, qty) FROM STDIN", io.StringIO("x\ty\n"))
        out["copy_error"] = "none raised"
    except psycopg2.Error as e:
        out["copy_error"] = e.pgcode
    conn.rollback()

    cur.execute("SELECT count(*), sum(qty) FROM items")
    out["totals"] = canon(cur.fetchone())
    conn.commit()

    # One Query message of some 100 KB holding two statements.
    values = ",".join(cur.mogrify("(%s, %s)", (f"big{i};'x'", i)).decode() for i in range(3000))
    cur.execute(f"INSERT INTO items (name, qty) VALUES {values}; "
                "SELECT count(*), max(name) FROM items WHERE name LIKE 'big%'")
    out["big_query"] = [len(values), canon(cur.fetchone())]
    conn.commit()
finally:
    conn.close()
emit(out)
