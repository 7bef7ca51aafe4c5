"""A client encoding other than UTF-8 (LATIN1): the server converts, the proxy only relays
bytes. psycopg 3 sends the SQL in Parse messages (extended protocol), psycopg2 in Query
messages (simple protocol); both with non-ASCII characters in the SQL text and in parameters.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import psycopg
import psycopg2

from _common import dsn, emit, rows

out = {}
with psycopg.connect(dsn(), autocommit=True, client_encoding="LATIN1") as conn:
    out["psycopg_encoding"] = conn.execute("SHOW client_encoding").fetchone()[0]
    cur = conn.cursor()
    cur.execute("INSERT INTO items (name, qty) VALUES ('señor ' || %s, 1) RETURNING name", ("café",))
    out["psycopg_insert"] = rows(cur.fetchall())
    for _ in range(2):
        cur.execute("SELECT name, length(name), octet_length(convert_to(name, 'UTF8')) "
                    "FROM items WHERE name LIKE 'señor%%' AND qty = %s", (1,))
        out.setdefault("psycopg_select", []).append(rows(cur.fetchall()))
conn = psycopg2.connect(dsn())
try:
    conn.set_client_encoding("LATIN1")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("INSERT INTO items (name, qty) VALUES (%s, 2); SELECT name FROM items "
                "WHERE name LIKE 'señor%%' ORDER BY qty", ("niño ñ",))
    out["psycopg2_select"] = rows(cur.fetchall())
finally:
    conn.close()
emit(out)
