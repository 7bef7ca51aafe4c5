"""The startup phase as drivers use it: SSL negotiation (sslmode=prefer falls back to plain,
require fails against a server without SSL), startup parameters (application_name, options,
client_encoding), and startup errors (unknown database, unknown parameter).
"""

import asyncio

import asyncpg
import psycopg
import psycopg2

from _common import dsn, dsn_params, emit

base = dsn()
SHOW = ("SELECT current_setting('application_name'), current_setting('statement_timeout'), "
        "current_setting('search_path'), current_setting('client_encoding')")
out = {}

with psycopg.connect(base + " sslmode=prefer application_name=pg3_app "
                     "options='-c statement_timeout=1234 -c search_path=pg_catalog,public'",
                     autocommit=True) as conn:
    out["psycopg_prefer"] = [conn.info.pgconn.ssl_in_use, list(conn.execute(SHOW).fetchone())]
try:
    psycopg.connect(base + " sslmode=require").close()
    out["psycopg_require"] = "connected"
except psycopg.OperationalError as e:
    out["psycopg_require"] = "does not support SSL" in str(e)

conn = psycopg2.connect(base + " sslmode=prefer application_name=pg2_app client_encoding=LATIN1")
conn.autocommit = True
cur = conn.cursor()
cur.execute(SHOW)
out["psycopg2_prefer"] = list(cur.fetchone())
conn.close()

for name, extra in [("no_database", " dbname=no_such_db"),
                    ("bad_option", " options='-c no_such_setting_x=1'"),
                    ("bad_value", " options='-c statement_timeout=soon'")]:
    try:
        psycopg.connect(base.replace(" dbname=app", "") + extra).close()
        out[name] = "connected"
    except psycopg.OperationalError as e:
        # libpq keeps the server's message: check its gist.
        msg = str(e)
        out[name] = [w for w in ["does not exist", "unrecognized configuration parameter",
                                 "invalid value for parameter"] if w in msg]


async def with_asyncpg():
    conn = await asyncpg.connect(**dsn_params(), ssl="prefer",
                                 server_settings={"application_name": "apg_app",
                                                  "search_path": "public"})
    try:
        out["asyncpg_prefer"] = list(await conn.fetchrow(SHOW))
    finally:
        await conn.close()
    try:
        await asyncpg.connect(**{**dsn_params(), "database": "no_such_db"})
        out["asyncpg_no_database"] = "connected"
    except asyncpg.PostgresError as e:
        out["asyncpg_no_database"] = e.sqlstate


asyncio.run(with_asyncpg())
emit(out)
