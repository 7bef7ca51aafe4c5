"""psycopg2 large objects: libpq reads and writes them with the function-call protocol
(FunctionCall messages, not queries), inside a transaction.
"""

import hashlib

import psycopg2

from _common import canon, dsn, emit

out = {}
data = bytes(range(256)) * 400  # 100 KB
conn = psycopg2.connect(dsn())
try:
    lob = conn.lobject(0, "wb")
    oid = lob.oid
    written = lob.write(data[:60000])
    written += lob.write(data[60000:])
    lob.close()
    conn.commit()
    out["written"] = written

    lob = conn.lobject(oid, "rb")
    first = lob.read(1000)
    lob.seek(50000)
    middle = lob.read(10)
    lob.seek(0)
    whole = lob.read()
    out["size"] = lob.seek(0, 2)
    lob.close()
    out["first"] = canon(first[:16])
    out["middle"] = canon(middle)
    out["whole_matches"] = hashlib.sha256(whole).hexdigest() == hashlib.sha256(data).hexdigest()
    # The server agrees on the contents.
    cur = conn.cursor()
    cur.execute("SELECT length(lo_get(%s)), md5(lo_get(%s)) = %s", (oid, oid, hashlib.md5(data).hexdigest()))
    out["server"] = canon(cur.fetchone())
    # A function call that fails: reading a large object that does not exist.
    conn.commit()
    try:
        conn.lobject(oid + 12345, "rb")
        out["missing"] = "none raised"
    except psycopg2.Error as e:
        # libpq reports function-call errors without a SQLSTATE: keep the message's gist.
        out["missing"] = "does not exist" in str(e)
    conn.rollback()
    conn.lobject(oid, "rb").unlink()
    conn.commit()
    cur.execute("SELECT count(*) FROM pg_largeobject_metadata")
    out["left"] = canon(cur.fetchone())
    conn.commit()
finally:
    conn.close()
emit(out)
