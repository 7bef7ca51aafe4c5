"""A 10 MB bytea parameter, sent in binary (psycopg 3), inserted, read back in binary and text.

Table (made by the test): blobs(id int primary key, data bytea).
"""

import hashlib
import random

import psycopg

from _common import canon, dsn, emit

SIZE = 10 * 1024 * 1024
data = random.Random(20240229).randbytes(SIZE)
out = {"sent": canon(data)}
with psycopg.connect(dsn(), autocommit=True) as conn:
    cur = conn.cursor(binary=True)
    cur.execute(
        "INSERT INTO blobs (id, data) VALUES (%b, %b) RETURNING length(data), md5(data)",
        (1, data),
    )
    length, md5 = cur.fetchone()
    out["server_length"] = canon(length)
    out["server_md5_matches"] = md5 == hashlib.md5(data).hexdigest()
    cur.execute("SELECT data FROM blobs WHERE id = %b", (1,))
    out["binary_back"] = canon(cur.fetchone()[0])
    text = conn.cursor()
    text.execute("SELECT data FROM blobs WHERE id = %s", (1,))
    out["text_back"] = canon(text.fetchone()[0])
    # The parameter echoed straight back: 10 MB each way in one round trip.
    cur.execute("SELECT %b::bytea", (data,))
    out["echo"] = canon(cur.fetchone()[0])
emit(out)
