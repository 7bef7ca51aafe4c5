"""Password authentication end to end through the proxy: each driver logs in with the DSN's
user and password (libpq for psycopg 3 and psycopg2, asyncpg's own SCRAM/md5 code), and fails
with a wrong password.
"""

import asyncio

import asyncpg
import psycopg
import psycopg2

from _common import dsn, dsn_params, emit

WHO = "SELECT current_user::text, session_user::text, 'ok'"
out = {}
good = dsn()
bad = " ".join("password=wrong" if p.startswith("password=") else p for p in good.split())

with psycopg.connect(good, autocommit=True) as conn:
    out["psycopg"] = list(conn.execute(WHO).fetchone())
conn = psycopg2.connect(good)
conn.autocommit = True
cur = conn.cursor()
cur.execute(WHO)
out["psycopg2"] = list(cur.fetchone())
conn.close()


async def with_asyncpg():
    conn = await asyncpg.connect(**dsn_params())
    try:
        out["asyncpg"] = list(await conn.fetchrow(WHO))
    finally:
        await conn.close()
    try:
        await asyncpg.connect(**{**dsn_params(), "password": "wrong"})
        out["asyncpg_wrong"] = "connected"
    except asyncpg.PostgresError as e:
        out["asyncpg_wrong"] = e.sqlstate


asyncio.run(with_asyncpg())
for name, connect in [("psycopg_wrong", psycopg.connect), ("psycopg2_wrong", psycopg2.connect)]:
    try:
        connect(bad).close()
        out[name] = "connected"
    except (psycopg.OperationalError, psycopg2.OperationalError) as e:
        out[name] = "password authentication failed" in str(e)
emit(out)
