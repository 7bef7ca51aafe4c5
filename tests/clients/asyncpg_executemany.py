"""asyncpg executemany: one Parse, then a pipeline of Bind/Execute for the rows and one Sync;
a batch that fails part-way is rolled back whole.

Table (made by the test): items(id serial primary key, name text unique, qty int).
"""

import asyncio

import asyncpg

from _common import canon, dsn_params, emit, rows

INSERT = "INSERT INTO items (name, qty) VALUES ($1, $2)"
BULK = 20000


async def main():
    out = {}
    conn = await asyncpg.connect(**dsn_params())
    try:
        await conn.executemany(INSERT, [(f"r{i}", i) for i in range(1, 21)])
        out["after_first"] = canon(await conn.fetchrow("SELECT count(*), sum(qty) FROM items"))
        await conn.executemany(
            "UPDATE items SET qty = qty * $2 WHERE name = $1", [("r1", 100), ("r2", 100), ("r1", 100)]
        )
        try:
            await conn.executemany(INSERT, [("s1", 1), ("s2", 2), ("r5", 3), ("s4", 4)])
            out["failure"] = "none raised"
        except asyncpg.PostgresError as e:
            out["failure"] = e.sqlstate
        async with conn.transaction():
            await conn.executemany(INSERT, [("t1", 1), ("t2", 2)])
        out["items"] = rows(await conn.fetch("SELECT name, qty FROM items ORDER BY id"))
        # A large batch: thousands of Bind/Execute in flight through the proxy at once.
        await conn.executemany(INSERT, [(f"bulk{i}", i) for i in range(BULK)])
        out["bulk"] = canon(await conn.fetchrow(
            "SELECT count(*), sum(qty) FROM items WHERE name LIKE 'bulk%'"
        ))
    finally:
        await conn.close()
    return out


emit(asyncio.run(main()))
