"""Pipelined statements and their timing: a slow statement followed by quick ones in one
psycopg 3 pipeline, and an asyncpg executemany batch. The server runs a connection's
statements one after the other, so the time each took cannot add up to more than the time
they all took together, as the client measures it (under "_seconds", which differs from run
to run and is left out of the comparison).
"""

import asyncio
import time

import asyncpg
import psycopg

from _common import canon, dsn, dsn_params, emit

out = {}
seconds = {}
with psycopg.connect(dsn(), autocommit=True) as conn:
    started = time.monotonic()
    with conn.pipeline():
        slow = conn.execute("SELECT pg_sleep(0.3), 'slow'")
        quick = [conn.execute("SELECT %s::int * 2", (i,)) for i in range(5)]
    seconds["pipeline"] = time.monotonic() - started
    out["pipeline"] = [canon(slow.fetchone()[1])] + [canon(c.fetchone()[0]) for c in quick]


async def with_asyncpg():
    conn = await asyncpg.connect(**dsn_params())
    try:
        await conn.execute("CREATE TEMPORARY TABLE batch (a int, b text)")
        rows = [(i, "x") for i in range(2000)]
        started = time.monotonic()
        await conn.executemany("INSERT INTO batch VALUES ($1, $2)", rows)
        seconds["executemany"] = time.monotonic() - started
        out["executemany"] = canon(await conn.fetchval("SELECT count(*) FROM batch"))
    finally:
        await conn.close()


asyncio.run(with_asyncpg())
out["_seconds"] = seconds
emit(out)
