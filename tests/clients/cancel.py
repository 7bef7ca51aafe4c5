"""Query cancellation through the proxy: psycopg 3 (conn.cancel_safe from another thread) and
asyncpg (a timeout makes it send a CancelRequest). Each CancelRequest comes on a connection of
its own, which the proxy must send to the right server. Both sessions stay usable.
"""

import asyncio
import threading
import time

import asyncpg
import psycopg

from _common import canon, dsn, dsn_params, emit

SLEEP = "SELECT pg_sleep(%s)"
out = {}

with psycopg.connect(dsn(), autocommit=True) as conn:
    done = threading.Event()

    def cancel():
        # A cancel request that reaches the server before the query does is ignored, so
        # send one every 0.3 s until the query has ended.
        while not done.wait(0.3):
            conn.cancel_safe()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    started = time.monotonic()
    try:
        conn.execute(SLEEP, (20,))
        out["psycopg"] = "not cancelled"
    except psycopg.Error as e:
        out["psycopg"] = e.sqlstate
    out["psycopg_quick"] = time.monotonic() - started < 10
    done.set()
    canceller.join()
    out["psycopg_after"] = canon(conn.execute("SELECT 1 + %s", (1,)).fetchone())


async def with_asyncpg():
    conn = await asyncpg.connect(**dsn_params())
    try:
        started = time.monotonic()
        try:
            await conn.fetch("SELECT pg_sleep($1)", 20, timeout=0.3)
            out["asyncpg"] = "not cancelled"
        except asyncio.TimeoutError:
            out["asyncpg"] = "timeout"
        out["asyncpg_quick"] = time.monotonic() - started < 10
        out["asyncpg_after"] = canon(await conn.fetchval("SELECT 2 + $1::int", 2))
    finally:
        await conn.close()


asyncio.run(with_asyncpg())
emit(out)
