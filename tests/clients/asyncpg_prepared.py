"""asyncpg prepared statements: explicit (conn.prepare) and the statement cache (named
`__asyncpg_stmt_N__`), executed many times; without the cache (unnamed statements); and
statements that fail at Parse, at Bind and at Execute.

Table (made by the test): items(id serial primary key, name text unique, qty int) with rows
('a', 1) … ('j', 10).
"""

import asyncio

import asyncpg

from _common import canon, dsn_params, emit, rows

SELECT = "SELECT name, qty FROM items WHERE qty > $1 ORDER BY id LIMIT 3"


async def sqlstate(coro):
    try:
        await coro
        return "none raised"
    except asyncpg.PostgresError as e:
        return e.sqlstate


async def main():
    out = {}
    conn = await asyncpg.connect(**dsn_params())
    try:
        stmt = await conn.prepare(SELECT)
        out["params"] = [str(t.name) for t in stmt.get_parameters()]
        out["columns"] = [a.name for a in stmt.get_attributes()]
        got = []
        for threshold in [0, 5, 0, 8, 5]:
            got.append(rows(await stmt.fetch(threshold)))
        out["prepared"] = got
        out["fetchrow"] = canon(await stmt.fetchrow(2))
        out["fetchval"] = canon(await stmt.fetchval(9))
        # The same text through conn.fetch: asyncpg's statement cache prepares it once.
        cached = []
        for name in ["a", "b", "a"]:
            cached.append(rows(await conn.fetch("SELECT id, qty FROM items WHERE name = $1", name)))
        out["cached"] = cached
        out["execute_status"] = await conn.execute(
            "UPDATE items SET qty = qty + $1 WHERE name = ANY($2::text[])", 100, ["a", "b", "zz"]
        )
        # Failures: at Parse (syntax, unknown table), at Execute (unique violation, division).
        out["syntax"] = await sqlstate(conn.fetch("SELEC name FROM items"))
        out["undefined_table"] = await sqlstate(conn.fetch("SELECT * FROM no_such_table"))
        out["unique"] = await sqlstate(
            conn.execute("INSERT INTO items (name, qty) VALUES ($1, $2)", "c", 3)
        )
        out["division"] = await sqlstate(
            conn.fetchval("SELECT 100 / (qty - $1) FROM items WHERE name = $2", 4, "d")
        )
        # The prepared statement still works after the errors.
        out["prepared_after_errors"] = rows(await stmt.fetch(9))
        # The table changes under a cached statement: the server refuses the old plan
        # (0A000) and asyncpg prepares the statement again and retries, transparently.
        before = rows(await conn.fetch("SELECT * FROM items WHERE name = $1", "e"))
        await conn.execute("ALTER TABLE items ADD COLUMN note text DEFAULT 'new'")
        after = rows(await conn.fetch("SELECT * FROM items WHERE name = $1", "e"))
        out["schema_change"] = [before, after]
    finally:
        await conn.close()

    # No statement cache: every query is parsed as the unnamed statement.
    conn = await asyncpg.connect(**dsn_params(), statement_cache_size=0)
    try:
        uncached = []
        for threshold in [1, 1, 2]:
            uncached.append(rows(await conn.fetch(SELECT, threshold)))
        out["uncached"] = uncached
    finally:
        await conn.close()
    return out


emit(asyncio.run(main()))
