"""psycopg 3 with client-side binding (`cursor_factory=psycopg.ClientCursor`): parameters are
merged into the SQL as literals and sent with the simple protocol, several statements per
Query message when the caller writes several.

Table (made by the test): items(id serial primary key, name text unique, qty int).
Argument 2, if given, selects one part: "all" (default) or "function_body".
"""

import datetime
import decimal
import sys

import psycopg

from _common import canon, dsn, emit, rows

# Strings that look like SQL to a naive splitter.
TRICKY = [
    "it's; a test",
    "semi;colon -- not a comment",
    "$$dollar; quoted$$",
    "back\\slash;",
    "/* not; a comment */",
    "\"quoted; ident\"",
]


def all_results(cur):
    """Every result set of a multi-statement execute, with its status."""
    sets = []
    while True:
        sets.append({
            "status": cur.statusmessage,
            "rows": rows(cur.fetchall()) if cur.description else None,
        })
        if not cur.nextset():
            return sets


def main_part(conn, out):
    cur = conn.cursor()
    for i, s in enumerate(TRICKY):
        cur.execute("INSERT INTO items (name, qty) VALUES (%s, %s)", (s, i))
    cur.execute("SELECT name, qty FROM items WHERE name = ANY(%s) ORDER BY qty", (TRICKY,))
    out["tricky"] = rows(cur.fetchall())

    # Several statements in one execute, literals with semicolons among them.
    cur.execute(
        "UPDATE items SET qty = qty * %s WHERE name = %s; "
        "SELECT name, qty FROM items WHERE name LIKE %s ORDER BY id;"
        "  SELECT $q$;$q$ AS dollar, E'\\';' AS escaped, 'x' AS \";\"",
        (10, TRICKY[0], "%;%"),
    )
    out["multi"] = all_results(cur)

    # Comments and empty statements between statements.
    cur.execute(
        "/* leading; comment */ SELECT %s AS one -- trailing; comment\n;; ;"
        "SELECT %s AS two /* nested /* ; */ still; comment */",
        (1, 2),
    )
    out["comments"] = all_results(cur)

    # A plpgsql body in dollar quotes, then a call.
    cur.execute(
        "CREATE FUNCTION bump(x int) RETURNS int LANGUAGE plpgsql AS $fn$ "
        "BEGIN x := x + 1; RETURN x; END $fn$; SELECT bump(%s)",
        (41,),
    )
    out["plpgsql"] = all_results(cur)

    # A failure in the middle of a multi-statement Query: the statements before it are rolled
    # back with it (one implicit transaction), the ones after it never run.
    try:
        cur.execute(
            "INSERT INTO items (name, qty) VALUES (%s, %s); "
            "SELECT qty / %s FROM items; "
            "INSERT INTO items (name, qty) VALUES (%s, %s)",
            ("before", 1, 0, "after", 2),
        )
        out["failure"] = "none raised"
    except psycopg.Error as e:
        out["failure"] = e.sqlstate
    cur.execute("SELECT count(*) FROM items WHERE name IN (%s, %s)", ("before", "after"))
    out["after_failure"] = canon(cur.fetchone())
    # Nothing but a comment: the server answers EmptyQueryResponse, there is no statement.
    cur.execute("-- nothing; to do")
    out["empty"] = [cur.statusmessage, cur.description is None]
    # Notices between a statement's messages.
    notices = []
    conn.add_notice_handler(lambda d: notices.append([d.severity_nonlocalized, d.message_primary]))
    cur.execute("DO $$ BEGIN RAISE NOTICE 'first; %%', %s; RAISE WARNING 'second'; END $$", (1,))
    out["notices"] = notices
    # Literals of other types, as psycopg writes them.
    cur.execute(
        "SELECT %s::bytea, %s::numeric, %s::float8, %s::bool, %s::int[], %s::date",
        (b"\x00\x01';", decimal.Decimal("1.50"), 2.5, True, [1, None, 3],
         datetime.date(2024, 2, 29)),
    )
    out["types"] = rows(cur.fetchall())


def function_body_part(conn, out):
    # An SQL-standard function body (PostgreSQL 14+): its semicolons are inside one statement.
    cur = conn.cursor()
    cur.execute(
        "CREATE FUNCTION two_steps() RETURNS int LANGUAGE sql "
        "BEGIN ATOMIC SELECT 1; SELECT %s; END; "
        "SELECT two_steps() AS result",
        (2,),
    )
    out["function_body"] = all_results(cur)


part = sys.argv[2] if len(sys.argv) > 2 else "all"
out = {}
with psycopg.connect(dsn(), autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
    if part == "all":
        main_part(conn, out)
    elif part == "function_body":
        function_body_part(conn, out)
    else:
        raise SystemExit(f"unknown part {part}")
emit(out)
