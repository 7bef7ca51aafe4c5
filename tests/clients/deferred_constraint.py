"""A deferred foreign key that fails when the transaction commits, not when the statement
runs. In autocommit the commit is implicit: with the extended protocol it happens at the Sync
after the Execute, so the statement completes ("INSERT 0 1") and the error follows it; the
client's execute() raises 23503 all the same.

Tables (made by the test): parent(id int primary key) and
child(pid int references parent deferrable initially deferred).
"""

import asyncio

import asyncpg
import psycopg

from _common import canon, dsn, dsn_params, emit

out = {}
# Each case on a connection of its own, so that the test can tell them apart.
cases = [
    # Parse/Bind/Describe/Execute/Sync: the statement completes, the commit fails at the Sync.
    ("psycopg_extended", "INSERT INTO child VALUES (%s)", (999,)),
    # A simple Query: the server commits before it sends CommandComplete.
    ("psycopg_simple", "INSERT INTO child VALUES (998)", None),
]
for name, sql, params in cases:
    with psycopg.connect(dsn(), autocommit=True) as conn:
        try:
            conn.execute(sql, params)
            out[name] = "none raised"
        except psycopg.Error as e:
            out[name] = e.sqlstate
# In an explicit transaction the COMMIT statement fails.
with psycopg.connect(dsn(), autocommit=True) as conn:
    try:
        with conn.transaction():
            conn.execute("INSERT INTO child VALUES (%s)", (997,))
        out["psycopg_explicit"] = "none raised"
    except psycopg.Error as e:
        out["psycopg_explicit"] = e.sqlstate
    out["children"] = canon(conn.execute("SELECT count(*) FROM child").fetchone())


async def with_asyncpg():
    # Bind/Execute/Sync of a prepared statement: the commit fails at the Sync.
    conn = await asyncpg.connect(**dsn_params())
    try:
        await conn.execute("INSERT INTO child VALUES ($1)", 996)
        out["asyncpg"] = "none raised"
    except asyncpg.PostgresError as e:
        out["asyncpg"] = e.sqlstate
    finally:
        await conn.close()


asyncio.run(with_asyncpg())
emit(out)
