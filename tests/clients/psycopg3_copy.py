"""psycopg 3 COPY both ways, text and binary, and a COPY the client aborts.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import psycopg

from _common import canon, dsn, emit

out = {}
with psycopg.connect(dsn(), autocommit=True) as conn:
    cur = conn.cursor()
    with cur.copy("COPY items (name, qty) FROM STDIN") as copy:
        for i in range(1, 501):
            copy.write_row((f"text{i}\t;'\\", i))
    out["copy_in_text"] = cur.rowcount
    with cur.copy("COPY items (name, qty) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4"])
        for i in range(1, 301):
            copy.write_row((f"bin{i}", -i))
    out["copy_in_binary"] = cur.rowcount
    # Raw blocks, as an application streaming a file would write them.
    with cur.copy("COPY items (name, qty) FROM STDIN (FORMAT csv)") as copy:
        copy.write("raw1,1\nraw2,2\n")
        copy.write('"raw,3",3\n')
    out["copy_in_raw"] = cur.rowcount

    with cur.copy("COPY (SELECT name, qty FROM items WHERE qty %% %s = 0 ORDER BY id) TO STDOUT",
                  (50,)) as copy:
        out["copy_out_text"] = [canon(list(r)) for r in copy.rows()]
    out["copy_out_text_count"] = cur.rowcount
    with cur.copy("COPY (SELECT name, qty FROM items ORDER BY id) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4"])
        got = [tuple(r) for r in copy.rows()]
    out["copy_out_binary"] = [len(got), canon(got[0]), canon(got[-1])]
    with cur.copy("COPY items TO STDOUT") as copy:
        size = sum(len(block) for block in copy)
    out["copy_out_bytes"] = size

    # The client aborts a COPY FROM (CopyFail): nothing is kept, the server says 57014.
    try:
        with cur.copy("COPY items (name, qty) FROM STDIN") as copy:
            copy.write_row(("aborted", 1))
            raise RuntimeError("client gives up")
    except RuntimeError as e:
        out["aborted"] = str(e)
    except psycopg.Error as e:
        out["aborted"] = e.sqlstate
    # Bad data: the server rejects the COPY (22P02).
    try:
        with cur.copy("COPY items (name, qty) FROM STDIN") as copy:
            copy.write("ok\t1\nbad\tnot-a-number\n")
        out["bad_data"] = "none raised"
    except psycopg.Error as e:
        out["bad_data"] = e.sqlstate
    # The server fails part-way through a COPY TO: some rows were sent, then the error.
    got = []
    try:
        with cur.copy("COPY (SELECT 10 / (5 - g) FROM generate_series(1, 10) g) TO STDOUT") as copy:
            for row in copy.rows():
                got.append(row)
        out["copy_out_error"] = "none raised"
    except psycopg.Error as e:
        out["copy_out_error"] = e.sqlstate
    out["count"] = canon(cur.execute("SELECT count(*), sum(qty) FROM items").fetchone())
emit(out)
