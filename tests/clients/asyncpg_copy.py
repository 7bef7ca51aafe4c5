"""asyncpg COPY: copy_records_to_table (binary COPY FROM STDIN), copy_to_table from a file
object, copy_from_query / copy_from_table out, and a COPY the server rejects.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import asyncio
import io

import asyncpg

from _common import canon, dsn_params, emit


async def main():
    out = {}
    conn = await asyncpg.connect(**dsn_params())
    try:
        out["records"] = await conn.copy_records_to_table(
            "items", records=[(f"rec{i}", i) for i in range(1, 1001)], columns=["name", "qty"]
        )
        out["file"] = await conn.copy_to_table(
            "items", source=io.BytesIO(b"f1,1\nf2,2\n\"f,3\",3\n"), columns=["name", "qty"],
            format="csv",
        )
        buf = io.BytesIO()
        out["query_out"] = await conn.copy_from_query(
            "SELECT name, qty FROM items WHERE qty > $1 ORDER BY id", 998, output=buf
        )
        out["query_out_data"] = buf.getvalue().decode()
        buf = io.BytesIO()
        out["table_out"] = await conn.copy_from_table("items", output=buf, format="binary")
        out["table_out_size"] = len(buf.getvalue())
        try:
            await conn.copy_records_to_table(
                "items", records=[("dup1", 1), ("rec5", 5)], columns=["name", "qty"]
            )
            out["failure"] = "none raised"
        except asyncpg.PostgresError as e:
            out["failure"] = e.sqlstate
        out["totals"] = canon(await conn.fetchrow("SELECT count(*), sum(qty) FROM items"))
    finally:
        await conn.close()
    return out


emit(asyncio.run(main()))
