"""asyncpg cursors inside a transaction: a named portal read with row-limited Executes
(PortalSuspended between them) by iteration with prefetch, and by fetch/forward/fetchrow.
"""

import asyncio

import asyncpg

from _common import canon, dsn_params, emit, rows

QUERY = "SELECT g, md5(g::text) FROM generate_series(1, $1) g"


async def main():
    out = {}
    conn = await asyncpg.connect(**dsn_params())
    try:
        async with conn.transaction():
            out["iterated"] = [canon(r["g"]) async for r in conn.cursor(QUERY, 25, prefetch=10)]
        async with conn.transaction():
            cur = await conn.cursor(QUERY, 30)
            out["fetch7"] = rows(await cur.fetch(7))
            out["forward"] = await cur.forward(5)
            out["fetchrow"] = canon(await cur.fetchrow())
            out["fetch_rest"] = len(await cur.fetch(100))
            out["fetch_empty"] = rows(await cur.fetch(5))
        # A cursor whose rows fail part-way.
        try:
            async with conn.transaction():
                got = []
                async for r in conn.cursor("SELECT 10 / (12 - g) FROM generate_series(1, $1) g",
                                           20, prefetch=5):
                    got.append(canon(r[0]))
            out["failure"] = "none raised"
        except asyncpg.PostgresError as e:
            out["failure"] = e.sqlstate
        out["failed_after"] = got
        out["still_works"] = canon(await conn.fetchval("SELECT count(*) FROM generate_series(1, $1)", 3))
    finally:
        await conn.close()
    return out


emit(asyncio.run(main()))
