"""asyncpg: binary-format parameters and results of many types, round-tripped by the server.

Table (made by the test): typed(id int primary key, i2 int2, i8 int8, n numeric, f float8,
t text, b bytea, ok bool, d date, ts timestamptz, u uuid, j jsonb, arr int[], tarr text[],
iv interval, ip inet) with three rows, one of them all NULLs.
"""

import asyncio
import datetime
import decimal
import ipaddress
import json
import uuid

import asyncpg

from _common import canon, dsn_params, emit, rows

COLUMNS = "id, i2, i8, n, f, t, b, ok, d, ts, u, j, arr, tarr, iv, ip"


async def main():
    out = {}
    conn = await asyncpg.connect(**dsn_params())
    try:
        await conn.execute("SET TimeZone TO 'UTC'")
        out["stored"] = rows(await conn.fetch(f"SELECT {COLUMNS} FROM typed ORDER BY id"))
        values = (
            7, -32768, 2**63 - 1, decimal.Decimal("-12345678901234567890.000000001"), -0.0,
            "naïve ☃ text", bytes(range(256)), False, datetime.date(1999, 12, 31),
            datetime.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=datetime.timezone.utc),
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            json.dumps({"k": [1, "two", None]}), [1, None, -3], ["a", "b,c", None, ""],
            datetime.timedelta(days=-1, seconds=5), ipaddress.ip_interface("192.168.0.1/24"),
        )
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        out["inserted"] = rows(await conn.fetch(
            f"INSERT INTO typed ({COLUMNS}) VALUES ({placeholders}) RETURNING {COLUMNS}", *values
        ))
        # Each value back through a parameter of its own type, compared by the server.
        out["server_equal"] = canon(await conn.fetchrow(
            "SELECT i8 = $1, n = $2, b = $3, ts = $4, u = $5, j = $6::jsonb, arr = $7 "
            "FROM typed WHERE id = 7",
            values[2], values[3], values[6], values[9], values[10], values[11], values[12],
        ))
        out["reread"] = rows(await conn.fetch(f"SELECT {COLUMNS} FROM typed WHERE id = $1", 7))
        # Arrays of arrays, a record and a large numeric.
        out["nested"] = canon(await conn.fetchrow(
            "SELECT $1::int[][], ROW(1, 'x', NULL)::record, 2::numeric ^ 200, "
            "'{\"deep\": {\"list\": [1, 2, 3]}}'::jsonb",
            [[1, 2], [3, 4]],
        ))
        # Many rows in one result (several network reads' worth of DataRows).
        out["many"] = canon(await conn.fetchval(
            "SELECT sum(length(x)) FROM (SELECT repeat(md5(g::text), 10) AS x "
            "FROM generate_series(1, $1) g) s", 5000,
        ))
        big = await conn.fetch("SELECT g, repeat('x', g % 100) FROM generate_series(1, $1) g", 5000)
        out["many_rows"] = [len(big), canon(big[0]), canon(big[-1])]
    finally:
        await conn.close()
    return out


emit(asyncio.run(main()))
