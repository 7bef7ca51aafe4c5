"""psycopg 3 binary results and parameters, compared with text results of the same rows.

Table (made by the test): typed(id int primary key, i2 int2, i8 int8, n numeric, f float8,
t text, b bytea, ok bool, d date, ts timestamptz, u uuid, j jsonb, arr int[], tarr text[],
iv interval, ip inet) with three rows, one of them all NULLs.
"""

import datetime
import decimal
import uuid

import psycopg
from psycopg.types.json import Jsonb

from _common import canon, dsn, emit, rows

SELECT = (
    "SELECT id, i2, i8, n, f, t, b, ok, d, ts, u, j, arr, tarr, iv, ip "
    "FROM typed WHERE id >= %s ORDER BY id"
)
out = {}
with psycopg.connect(dsn(), autocommit=True) as conn:
    conn.execute("SET TimeZone TO 'UTC'")
    binary = conn.cursor(binary=True)  # every result column in binary format
    text = conn.cursor()
    out["binary"] = rows(binary.execute(SELECT, (0,)).fetchall())
    out["text"] = rows(text.execute(SELECT, (0,)).fetchall())
    out["binary_same_as_text"] = out["binary"] == out["text"]
    out["binary_formats"] = [c.type_code for c in binary.description]

    # Binary parameters (%b) in, binary results out, every type round-tripped by the server.
    values = (
        7, -32768, 2**63 - 1, decimal.Decimal("-12345678901234567890.000000001"), -0.0,
        "naïve ☃ text", bytes(range(256)), False, datetime.date(1999, 12, 31),
        datetime.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=datetime.timezone.utc),
        uuid.UUID("12345678-1234-5678-1234-567812345678"), Jsonb({"k": [1, "two", None]}),
        [1, None, -3], ["a", "b,c", None, ""], datetime.timedelta(days=-1, seconds=5),
        "192.168.0.1/24",
    )
    binary.execute(
        "INSERT INTO typed VALUES (%b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b, %b,"
        " %b::inet) RETURNING *",
        values,
    )
    out["inserted"] = rows(binary.fetchall())
    out["reread_binary"] = rows(binary.execute(SELECT, (7,)).fetchall())
    out["reread_text"] = rows(text.execute(SELECT, (7,)).fetchall())
    # The same parameters once more: the proxy must see equal parameter digests.
    out["reread_binary_again"] = rows(binary.execute(SELECT, (7,)).fetchall())
    # A binary cursor's statement fails: still a SQLSTATE.
    try:
        binary.execute("SELECT %b::int / 0", (1,))
        out["error"] = "none raised"
    except psycopg.Error as e:
        out["error"] = e.sqlstate
    out["count"] = canon(binary.execute("SELECT count(*) FROM typed").fetchone())

emit(out)
