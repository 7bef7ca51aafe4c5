//! Tests of the normalizer and analyzer: one or more per rule, the corpus of real client SQL,
//! golden ids, and robustness on arbitrary bytes.

use super::*;

fn n(sql: &str) -> String {
    let mut out = String::new();
    normalize(sql.as_bytes(), &mut out);
    out
}

fn nn(sql: &str) -> (String, Normalized) {
    let mut out = String::new();
    let r = normalize(sql.as_bytes(), &mut out);
    (out, r)
}

/// Both statements normalize to `expected`.
#[track_caller]
fn same(a: &str, b: &str, expected: &str) {
    assert_eq!(n(a), expected, "{a}");
    assert_eq!(n(b), expected, "{b}");
}

// ---- comments, white space, words ---------------------------------------------------------

#[test]
fn comments_are_removed() {
    assert_eq!(n("SELECT 1 -- one\n+ /* two */ 2"), "SELECT $1 + $2");
    assert_eq!(n("/* lead */ SELECT /* a /* nested */ b */ x"), "SELECT x");
    assert_eq!(n("SELECT x /* unterminated"), "SELECT x");
    assert_eq!(n("SELECT x -- to the end"), "SELECT x");
    assert_eq!(n("-- only a comment"), "");
    assert_eq!(n("SELECT a--b\nFROM t"), "SELECT a FROM t");
}

#[test]
fn white_space_and_spacing_are_canonical() {
    let expected = "SELECT a, b FROM t WHERE a = $1 AND b IN ($2 /*, ... */)";
    assert_eq!(n("SELECT a,b FROM t WHERE a=1 AND b IN (1,2)"), expected);
    assert_eq!(
        n("  SELECT\ta ,\n  b\r\nFROM   t WHERE a = 1 AND b IN ( 1 , 2 ) ;\n"),
        expected
    );
    assert_eq!(n("select count(*) from t"), "SELECT count(*) FROM t");
    assert_eq!(n("SELECT \"t\" . \"c\" , t.*"), "SELECT \"t\".\"c\", t.*");
    assert_eq!(n("SELECT x :: int, a [ 1 ]"), "SELECT x::INT, a[$1]");
    assert_eq!(
        n("SELECT COALESCE (a, b), EXISTS (SELECT 1)"),
        "SELECT COALESCE(a, b), EXISTS(SELECT $1)"
    );
    assert_eq!(
        n("INSERT INTO t (a) VALUES (1)"),
        "INSERT INTO t (a) VALUES ($1) /*, ... */"
    );
    assert_eq!(n("CREATE TABLE t(a int)"), "CREATE TABLE t (a INT)");
    assert_eq!(n("CREATE INDEX i ON t(a)"), "CREATE INDEX i ON t (a)");
    assert_eq!(
        n("WITH x(a) AS (SELECT 1) SELECT a FROM x"),
        "WITH x (a) AS (SELECT $1) SELECT a FROM x"
    );
    assert_eq!(n("SELECT 1;;"), "SELECT $1");
    assert_eq!(n(""), "");
    assert_eq!(n(" \n\t "), "");
}

#[test]
fn keywords_upper_identifiers_lower_quoted_kept() {
    assert_eq!(
        n("select Name, \"Name\", \"shop_Book\".\"ID\" from Shop_Book where NOT deleted order by 1 desc"),
        "SELECT name, \"Name\", \"shop_Book\".\"ID\" FROM shop_book WHERE NOT deleted ORDER BY $1 DESC"
    );
    assert_eq!(n("SeLeCt x FrOm t"), n("SELECT x FROM t"));
    // Non-ASCII identifiers are kept; only ASCII letters change case.
    assert_eq!(n("SELECT Zoë FROM café"), "SELECT zoë FROM café");
    // After a dot, a keyword is a name.
    assert_eq!(
        n("SELECT t.Key, t.user, s.close x_1 FROM public.Order"),
        "SELECT t.key, t.user, s.close x_1 FROM public.order"
    );
    assert_eq!(
        n("SELECT \"a\"\"b\", U&\"d\\0061t\""),
        "SELECT \"a\"\"b\", U&\"d\\0061t\""
    );
}

// ---- literals -------------------------------------------------------------------------------

#[test]
fn numbers_become_parameters() {
    assert_eq!(
        n("SELECT 1, 1.5, .5, 5., 1e10, 1.5E-3, 2e+4, 0x1F, 0o17, 0b101, 1_000_000"),
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"
    );
}

#[test]
fn strings_of_every_form_become_parameters() {
    assert_eq!(
        n(
            r"SELECT 'a', 'it''s', E'a\'b\\', e'\n', $$x$$, $tag$ a $$ b $tag$, B'101', X'FF', N'n', U&'d\0061t'"
        ),
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10"
    );
    assert_eq!(n("SELECT U&'d!0061t' UESCAPE '!', 2"), "SELECT $1, $2");
    // Continuation over a newline is one constant; on one line it is two tokens.
    assert_eq!(n("SELECT 'a'\n'b'"), "SELECT $1");
    assert_eq!(n("SELECT 'a' 'b'"), "SELECT $1 $2");
    // A `'` or `$$` inside an identifier or a comment is not a string.
    assert_eq!(
        n("SELECT a$b, \"it's\" /* ' */ FROM t"),
        "SELECT a$b, \"it's\" FROM t"
    );
}

#[test]
fn typed_literals_keep_their_type() {
    assert_eq!(
        n("SELECT DATE '2024-01-01', INTERVAL '1 day', TIMESTAMP WITH TIME ZONE '2024-01-01 00:00+00', '1'::int, CAST('2' AS bigint)"),
        "SELECT date $1, INTERVAL $2, TIMESTAMP WITH TIME ZONE $3, $4::INT, CAST($5 AS BIGINT)"
    );
}

#[test]
fn type_modifiers_are_kept() {
    assert_eq!(
        n("SELECT x::varchar(20), y::numeric(10, 2), CAST(z AS character varying(5)), 7"),
        "SELECT x::VARCHAR(20), y::NUMERIC(10, 2), CAST(z AS CHARACTER VARYING(5)), $1"
    );
}

#[test]
fn negative_numbers_where_they_are_literals() {
    assert_eq!(
        n("SELECT * FROM t WHERE a = -5"),
        "SELECT * FROM t WHERE a = $1"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a=-5"),
        "SELECT * FROM t WHERE a = $1"
    );
    assert_eq!(n("SELECT f(-5, -1.5e3)"), "SELECT f($1, $2)");
    assert_eq!(n("SELECT -5"), "SELECT $1");
    assert_eq!(
        n("SELECT CASE WHEN a THEN -1 ELSE - 2 END"),
        "SELECT CASE WHEN a THEN $1 ELSE $2 END"
    );
    assert_eq!(n("UPDATE t SET b = b + -4711"), "UPDATE t SET b = b + $1");
    // Subtraction stays.
    assert_eq!(
        n("SELECT a - 5, a-5, (a) - 5, 3 - 5"),
        "SELECT a - $1, a - $2, (a) - $3, $4 - $5"
    );
    assert_eq!(
        n("SELECT CURRENT_DATE - 1, \"x\" - 1"),
        "SELECT CURRENT_DATE - $1, \"x\" - $2"
    );
    assert_eq!(n("SELECT a - -5"), "SELECT a - $1");
    // A unary minus on something else stays an operator.
    assert_eq!(n("SELECT -a"), "SELECT - a");
    // The sign is part of the value: -5 and 5 have different digests, one fingerprint.
    let (a, da) = nn("SELECT * FROM t WHERE a = -5");
    let (b, db) = nn("SELECT * FROM t WHERE a = 5");
    assert_eq!(a, b);
    assert_ne!(da.literal_digest, db.literal_digest);
}

/// A `SET` statement's values are literals even as bare words or quoted names (a tenant's
/// schema, a role, an application name), so none of them may reach the normalized text; the
/// variable's name and DEFAULT stay.
#[test]
fn set_values_are_literals() {
    let cases = [
        (
            "SET application_name = billing_eu",
            "SET application_name = $1",
        ),
        (
            "set application_name to 'billing'",
            "SET application_name TO $1",
        ),
        (
            "SET search_path TO tenant_42, \"Tenant 42\", public",
            "SET search_path TO $1, $2, $3",
        ),
        (
            "SET LOCAL statement_timeout = 5000",
            "SET LOCAL statement_timeout = $1",
        ),
        (
            "SET SESSION myapp.tenant = acme",
            "SET SESSION myapp.tenant = $1",
        ),
        ("SET enable_seqscan = on", "SET enable_seqscan = $1"),
        ("SET enable_seqscan = off", "SET enable_seqscan = $1"),
        ("SET extra_float_digits = -3", "SET extra_float_digits = $1"),
        ("SET search_path TO DEFAULT", "SET search_path TO DEFAULT"),
        ("SET TIME ZONE UTC", "SET TIME ZONE $1"),
        ("SET TIME ZONE 'Europe/Paris'", "SET TIME ZONE $1"),
        ("SET TIME ZONE LOCAL", "SET TIME ZONE LOCAL"),
        (
            "SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE",
            "SET TIME ZONE INTERVAL $1 hour TO minute",
        ),
        ("SET ROLE alice", "SET ROLE $1"),
        (
            "SET SESSION AUTHORIZATION \"alice\"",
            "SET SESSION AUTHORIZATION $1",
        ),
        (
            "SET SESSION AUTHORIZATION DEFAULT",
            "SET SESSION AUTHORIZATION DEFAULT",
        ),
        // Not a variable's value: kept as they are.
        (
            "SET TRANSACTION ISOLATION level SERIALIZABLE",
            "SET TRANSACTION ISOLATION level SERIALIZABLE",
        ),
        (
            "SET CONSTRAINTS fk_a, fk_b DEFERRED",
            "SET CONSTRAINTS fk_a, fk_b DEFERRED",
        ),
        ("UPDATE t SET a = b", "UPDATE t SET a = b"),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
            "INSERT INTO t VALUES ($1) /*, ... */ ON CONFLICT (a) DO UPDATE SET b = excluded.b",
        ),
        // Each statement of a string on its own.
        (
            "SET search_path = acme; SELECT a FROM t",
            "SET search_path = $1; SELECT a FROM t",
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(n(sql), want, "{sql}");
    }
    // One fingerprint for every tenant, and the values still tell calls apart.
    let (a, da) = nn("SET search_path = tenant_1");
    let (b, db) = nn("SET search_path = tenant_2");
    assert_eq!(a, b);
    assert_ne!(da.literal_digest, db.literal_digest);
}

#[test]
fn booleans_and_null() {
    assert_eq!(
        n("UPDATE t SET a = TRUE, b = false, c = NULL WHERE d IS NULL AND e IS NOT TRUE AND f IS FALSE"),
        "UPDATE t SET a = $1, b = $2, c = $3 WHERE d IS NULL AND e IS NOT TRUE AND f IS FALSE"
    );
    assert_eq!(
        n("CREATE TABLE t (a int NOT NULL DEFAULT NULL, b int NULL)"),
        "CREATE TABLE t (a INT NOT NULL DEFAULT NULL, b INT NULL)"
    );
    assert_eq!(
        n("SELECT NULL, COALESCE(a, NULL)"),
        "SELECT NULL, COALESCE(a, NULL)"
    );
    // In a VALUES row a NULL is a value: psycopg2's interpolated None matches psycopg 3's $n.
    same(
        "INSERT INTO t (a, b) VALUES (1, NULL)",
        "INSERT INTO t (a, b) VALUES ($1, $2)",
        "INSERT INTO t (a, b) VALUES ($1, $2) /*, ... */",
    );
    assert_eq!(
        n("INSERT INTO t (a, b) VALUES (now(), NULL)"),
        "INSERT INTO t (a, b) VALUES (now(), $1)"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN (NULL, 1)"),
        "SELECT * FROM t WHERE a IN ($1 /*, ... */)"
    );
}

// ---- parameters and numbering ---------------------------------------------------------------

#[test]
fn existing_parameters_are_kept_and_new_ones_come_after() {
    assert_eq!(
        n("SELECT * FROM t WHERE a = $1 LIMIT 21"),
        "SELECT * FROM t WHERE a = $1 LIMIT $2"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a = $2 AND b = $1 AND c = 'x'"),
        "SELECT * FROM t WHERE a = $2 AND b = $1 AND c = $3"
    );
    // A literal before a higher $n: numbered after the highest, as pg_stat_statements does.
    let (text, r) = nn("SELECT 1 AS \"a\" FROM t WHERE x = $1 AND y = $7 LIMIT 1");
    assert_eq!(
        text,
        "SELECT $8 AS \"a\" FROM t WHERE x = $1 AND y = $7 LIMIT $9"
    );
    assert_eq!(r.param_count, 9);
    assert_eq!(r.literal_count, 2);
    // Patched numbers that grow a digit, and more new parameters than can be patched (the
    // statement is then normalized again).
    for literals in [1, 5, 16, 17, 40] {
        let values: Vec<String> = (0..literals).map(|i| format!("f({i})")).collect();
        let sql = format!(
            "SELECT {} FROM t WHERE a = $9 AND b = $1",
            values.join(", ")
        );
        let expected: Vec<String> = (0..literals).map(|i| format!("f(${})", 10 + i)).collect();
        let (text, r) = nn(&sql);
        assert_eq!(
            text,
            format!(
                "SELECT {} FROM t WHERE a = $9 AND b = $1",
                expected.join(", ")
            )
        );
        assert_eq!(r.param_count, 9 + literals);
    }
}

#[test]
fn counts() {
    let (_, r) = nn("SELECT * FROM t WHERE a IN (1, 2, 3) AND b = $1 AND c = 'x'");
    assert_eq!(r.literal_count, 4);
    assert_eq!(r.param_count, 3);
    let (_, r) = nn("SELECT 1");
    assert_eq!((r.literal_count, r.param_count), (1, 1));
    let (_, r) = nn("BEGIN");
    assert_eq!(
        (r.literal_count, r.param_count, r.literal_digest),
        (0, 0, 0)
    );
}

// ---- folded lists ---------------------------------------------------------------------------

#[test]
fn in_lists_of_any_length_fold_to_one_form() {
    let expected = "SELECT * FROM t WHERE a IN ($1 /*, ... */)";
    for sql in [
        "SELECT * FROM t WHERE a IN (1,2,3)",
        "SELECT * FROM t WHERE a IN (4,5)",
        "SELECT * FROM t WHERE a IN (6)",
        "SELECT * FROM t WHERE a IN ($1, $2)",
        "SELECT * FROM t WHERE a IN ('x', 'y')",
        "SELECT * FROM t WHERE a IN (-1, +2, 3.5e1)",
        "SELECT * FROM t WHERE a in ( 1 /* c */ , 2 )",
    ] {
        assert_eq!(n(sql), expected, "{sql}");
    }
    assert_eq!(
        n("SELECT * FROM t WHERE a NOT IN ('a'::uuid, 'b'::uuid)"),
        "SELECT * FROM t WHERE a NOT IN ($1::uuid /*, ... */)"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN ('1'::timestamp with time zone, '2'::pg_catalog.numeric(10,2)[])"),
        "SELECT * FROM t WHERE a IN ($1::TIMESTAMP WITH TIME ZONE /*, ... */)"
    );
}

#[test]
fn lists_that_are_not_constants_do_not_fold() {
    assert_eq!(
        n("SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = 1)"),
        "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = $1)"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN (1, b, 3)"),
        "SELECT * FROM t WHERE a IN ($1, b, $2)"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN (1, 2 + 3)"),
        "SELECT * FROM t WHERE a IN ($1, $2 + $3)"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN ()"),
        "SELECT * FROM t WHERE a IN ()"
    );
    assert_eq!(
        n("SELECT * FROM t WHERE a IN (1, 2"),
        "SELECT * FROM t WHERE a IN ($1, $2"
    );
    // IN without a list is left alone.
    assert_eq!(n("FETCH 5 IN c"), "FETCH $1 IN c");
}

#[test]
fn parameters_after_a_folded_list_are_renumbered() {
    same(
        "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3, $4) AND c = $5 LIMIT 21",
        "SELECT * FROM t WHERE a = 1 AND b IN (2, 3) AND c = 4 LIMIT 21",
        "SELECT * FROM t WHERE a = $1 AND b IN ($2 /*, ... */) AND c = $3 LIMIT $4",
    );
    same(
        "SELECT * FROM t WHERE a IN ($1, $2) AND b IN ($3, $4, $5) AND c = $6",
        "SELECT * FROM t WHERE a IN (1) AND b IN (2, 3) AND c = 4",
        "SELECT * FROM t WHERE a IN ($1 /*, ... */) AND b IN ($2 /*, ... */) AND c = $3",
    );
    // A parameter repeated inside the list does not shift the others.
    assert_eq!(
        n("SELECT * FROM t WHERE a IN ($1, $1) AND b = $2"),
        "SELECT * FROM t WHERE a IN ($1 /*, ... */) AND b = $2"
    );
    // Hand-numbered parameters out of order stay deterministic and never reach $0.
    assert_eq!(
        n("SELECT * FROM t WHERE a IN ($3, $1, $2) AND b = $4"),
        "SELECT * FROM t WHERE a IN ($3 /*, ... */) AND b = $4"
    );
}

#[test]
fn values_rows_fold() {
    let expected = "INSERT INTO t (a, b) VALUES ($1, $2) /*, ... */ RETURNING t.id";
    for sql in [
        "INSERT INTO t (a, b) VALUES (1, 'x') RETURNING t.id",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, NULL) RETURNING t.id",
        "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING t.id",
        "insert into t (a, b) values (1,'x'),(2,'y') returning t.id",
    ] {
        assert_eq!(n(sql), expected, "{sql}");
    }
    assert_eq!(
        n("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO UPDATE SET b = $5"),
        "INSERT INTO t (a, b) VALUES ($1, $2) /*, ... */ ON CONFLICT (a) DO UPDATE SET b = $3"
    );
    assert_eq!(
        n("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v (id, name)"),
        "SELECT * FROM (VALUES ($1, $2) /*, ... */) AS v (id, name)"
    );
    // A row with an expression stops the fold; the rows are then normalized one by one.
    assert_eq!(
        n("INSERT INTO t VALUES (1, now()), (2, now())"),
        "INSERT INTO t VALUES ($1, now()), ($2, now())"
    );
    assert_eq!(
        n("INSERT INTO t VALUES (1, DEFAULT), (2, DEFAULT)"),
        "INSERT INTO t VALUES ($1, DEFAULT) /*, ... */"
    );
}

#[test]
fn arrays_fold() {
    same(
        "SELECT * FROM t WHERE a = ANY(ARRAY[1, 2, 3])",
        "SELECT * FROM t WHERE a = ANY(ARRAY['x'])",
        "SELECT * FROM t WHERE a = ANY(ARRAY[$1 /*, ... */])",
    );
    assert_eq!(n("SELECT ARRAY[]::int[]"), "SELECT ARRAY[]::INT[]");
    assert_eq!(
        n("SELECT ARRAY[[1, 2], [3, 4]]"),
        "SELECT ARRAY[[$1, $2], [$3, $4]]"
    );
    assert_eq!(n("SELECT ARRAY[a, 1]"), "SELECT ARRAY[a, $1]");
    // An array literal in a string is just a string.
    assert_eq!(
        n("SELECT * FROM t WHERE a = ANY('{1,2,3}')"),
        "SELECT * FROM t WHERE a = ANY($1)"
    );
}

#[test]
fn folded_lists_still_count_in_the_digest() {
    let d = |sql: &str| nn(sql).1.literal_digest;
    assert_ne!(
        d("SELECT * FROM t WHERE a IN (1, 2)"),
        d("SELECT * FROM t WHERE a IN (1, 3)")
    );
    assert_ne!(
        d("SELECT * FROM t WHERE a IN (1, 2)"),
        d("SELECT * FROM t WHERE a IN (1, 2, 2)")
    );
    assert_ne!(
        d("SELECT * FROM t WHERE a IN (12)"),
        d("SELECT * FROM t WHERE a IN (1, 2)")
    );
    assert_eq!(
        d("SELECT * FROM t WHERE a IN (1, 2)"),
        d("select * from t where a in (1, 2)")
    );
    assert_ne!(
        d("INSERT INTO t VALUES (1, 'a'), (2, 'b')"),
        d("INSERT INTO t VALUES (1, 'a'), (2, 'c')")
    );
}

#[test]
fn literal_digest() {
    let d = |sql: &str| nn(sql).1.literal_digest;
    assert_eq!(
        d("SELECT * FROM t WHERE a = 1 AND b = 'x'"),
        d("SELECT * FROM t WHERE a=1 AND b='x'")
    );
    assert_ne!(
        d("SELECT * FROM t WHERE a = 1 AND b = 'x'"),
        d("SELECT * FROM t WHERE a = 1 AND b = 'y'")
    );
    // Order matters, and so does the form of the constant.
    assert_ne!(d("SELECT 1, 2"), d("SELECT 2, 1"));
    assert_ne!(d("SELECT 1"), d("SELECT '1'"));
    assert_eq!(d("SELECT * FROM t WHERE a = $1"), 0);
    assert_ne!(d("SELECT 1"), 0);
}

// ---- per-call names -------------------------------------------------------------------------

#[test]
fn django_savepoints_fold() {
    same(
        "SAVEPOINT \"s140355385_x2\"",
        "SAVEPOINT \"s139871123_x15\"",
        "SAVEPOINT \"sN_xN\"",
    );
    same(
        "RELEASE SAVEPOINT \"s140355385_x2\"",
        "RELEASE SAVEPOINT \"s1_x1\"",
        "RELEASE SAVEPOINT \"sN_xN\"",
    );
    same(
        "ROLLBACK TO SAVEPOINT \"s140355385_x2\"",
        "rollback to savepoint \"s9_x9\"",
        "ROLLBACK TO SAVEPOINT \"sN_xN\"",
    );
    assert_eq!(n("RELEASE sa_savepoint_3"), "RELEASE sa_savepoint_N");
    assert_eq!(
        n("ROLLBACK TO active_record_1"),
        "ROLLBACK TO active_record_N"
    );
    // Other names are kept.
    assert_eq!(n("SAVEPOINT before_import"), "SAVEPOINT before_import");
}

#[test]
fn django_cursors_fold() {
    same(
        "DECLARE \"_django_curs_140355385_sync_3\" NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t WHERE a = 1",
        "DECLARE \"_django_curs_139871123_sync_17\" NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t WHERE a = 2",
        "DECLARE \"_django_curs_N_sync_N\" NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t WHERE a = $1",
    );
    same(
        "FETCH FORWARD 2000 FROM \"_django_curs_140355385_sync_3\"",
        "FETCH FORWARD 100 FROM \"_django_curs_1_sync_2\"",
        "FETCH FORWARD $1 FROM \"_django_curs_N_sync_N\"",
    );
    assert_eq!(
        n("MOVE ABSOLUTE 0 IN \"_django_curs_1_async_2\""),
        "MOVE ABSOLUTE $1 IN \"_django_curs_N_async_N\""
    );
    assert_eq!(n("FETCH NEXT c_1"), "FETCH NEXT c_N");
    assert_eq!(
        n("CLOSE \"_django_curs_140355385_sync_3\""),
        "CLOSE \"_django_curs_N_sync_N\""
    );
    assert_eq!(n("CLOSE ALL"), "CLOSE ALL");
}

#[test]
fn prepared_statement_names_fold() {
    same(
        "DEALLOCATE _pg3_12",
        "deallocate _pg3_0",
        "DEALLOCATE _pg3_N",
    );
    assert_eq!(n("deallocate prepare _pg3_0"), "DEALLOCATE PREPARE _pg3_N");
    assert_eq!(
        n("EXECUTE __asyncpg_stmt_1a__(1, 'x')"),
        "EXECUTE __asyncpg_stmt_N__($1, $2)"
    );
    assert_eq!(
        n("PREPARE \"__asyncpg_stmt_ff__\" AS SELECT $1"),
        "PREPARE \"__asyncpg_stmt_N__\" AS SELECT $1"
    );
    assert_eq!(
        n("EXECUTE stmtcache_9f86d081884c7d65(1)"),
        "EXECUTE stmtcache_N($1)"
    );
    assert_eq!(n("EXECUTE plan2(1)"), "EXECUTE plan2($1)");
}

#[test]
fn same_name_elsewhere_is_not_folded() {
    assert_eq!(
        n("SELECT \"s1_x2\" FROM \"_pg3_12\""),
        "SELECT \"s1_x2\" FROM \"_pg3_12\""
    );
}

// ---- sqlcommenter ---------------------------------------------------------------------------

#[test]
fn trailing_sqlcommenter_comment_gives_context() {
    let (text, r) = nn(
        "SELECT * FROM t WHERE id = 42 /*action='show',controller='BookView',db_driver='psycopg2',\
         framework='django%3A5.0',route='%5Ebooks/%3Cint%3Apk%3E/%24',\
         traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/",
    );
    assert_eq!(text, "SELECT * FROM t WHERE id = $1");
    assert_eq!(r.context.route.as_deref(), Some("^books/<int:pk>/$"));
    assert_eq!(r.context.controller.as_deref(), Some("BookView"));
    assert_eq!(r.context.action.as_deref(), Some("show"));
    assert_eq!(r.context.framework.as_deref(), Some("django:5.0"));
    assert_eq!(
        r.context.traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    // The context is not part of the fingerprint.
    assert_eq!(r.id, nn("SELECT * FROM t WHERE id = 7").1.id);
}

#[test]
fn sqlcommenter_variants() {
    // Before a final `;`, and with the `%%` doubling of psycopg2.
    let (_, r) = nn("SELECT 1 /*route='%%2Fapi%%2Fbooks'*/ ;");
    assert_eq!(r.context.route.as_deref(), Some("/api/books"));
    // A comment that is not trailing is not context.
    let (_, r) = nn("SELECT /*route='x'*/ 1");
    assert!(r.context.is_empty());
    // Only the last comment counts.
    let (_, r) = nn("SELECT 1 /*route='a'*/ /*controller='b'*/");
    assert_eq!(
        (r.context.route, r.context.controller.as_deref()),
        (None, Some("b"))
    );
    // Ordinary and unterminated comments give nothing.
    assert!(nn("SELECT 1 /* hello */").1.context.is_empty());
    assert!(nn("SELECT 1 /*route='a'").1.context.is_empty());
    assert!(nn("SELECT 1").1.context.is_empty());
}

// ---- several statements, odd input ----------------------------------------------------------

#[test]
fn several_statements() {
    assert_eq!(n("BEGIN; SELECT 1; COMMIT;"), "BEGIN; SELECT $1; COMMIT");
    // State does not leak across `;`: `-` after `;` is a sign; FETCH's names end with it.
    assert_eq!(n("SELECT a; -1"), "SELECT a; $1");
    assert_eq!(
        n("FETCH 1 FROM c_1; SELECT c_1"),
        "FETCH $1 FROM c_N; SELECT c_1"
    );
}

/// PostgreSQL ends a `--` comment at a carriage return too. Ending it only at a line feed hid
/// the statements after it, and a quote or `/*` in them swallowed the rest of the text: the
/// tracker then paired every later statement with the whole text.
#[test]
fn a_carriage_return_ends_a_line_comment() {
    assert_eq!(n("-- note\rSELECT 'a' FROM t"), "SELECT $1 FROM t");
    assert_eq!(n("SELECT 1 --x\r+ 2"), "SELECT $1 + $2");
    let sql = b"--\rSELECT '\n/*';SELECT 1*1;SELECT 2";
    let found: Vec<&[u8]> = split::statements(sql).map(|r| &sql[r]).collect();
    assert_eq!(
        found,
        [&b"--\rSELECT '\n/*'"[..], b"SELECT 1*1", b"SELECT 2"]
    );
}

/// With `standard_conforming_strings = off`, `\'` does not end a plain string: read the
/// standard way, the rest of the literal came out as words (a leak).
#[test]
fn backslash_quotes_when_the_session_has_them() {
    let sql = r"SELECT 'it\'s zq1 and zq2' AS a, N'x\'zq3' FROM t WHERE b = 'c:\\'";
    let off = with_backslash_quotes(true, || n(sql));
    assert_eq!(off, "SELECT $1 AS a, $2 FROM t WHERE b = $3");
    // The standard reading of the same text differs, and the mode does not outlive the call.
    assert_ne!(n(sql), off);
    assert_eq!(n(r"SELECT 'c:\', 1"), "SELECT $1, $2");
    // Splitting follows the same rule.
    let two = br"SELECT 'a\'; b'; SELECT 2";
    let off: Vec<&[u8]> =
        with_backslash_quotes(true, || split::statements(two).map(|r| &two[r]).collect());
    assert_eq!(off, [&br"SELECT 'a\'; b'"[..], b"SELECT 2"]);
    let on: Vec<&[u8]> = split::statements(two).map(|r| &two[r]).collect();
    assert_eq!(on[0], br"SELECT 'a\'");
    // Nested calls restore the outer mode.
    with_backslash_quotes(true, || {
        assert_eq!(
            with_backslash_quotes(false, || n(r"SELECT 'c:\', 1")),
            "SELECT $1, $2"
        );
        assert_eq!(n(r"SELECT 'it\'s'"), "SELECT $1");
    });
}

#[test]
fn invalid_utf8_is_replaced_in_identifiers_only() {
    let mut out = String::new();
    let r = normalize(b"SELECT \xff\xfe FROM t WHERE a = '\xff'", &mut out);
    assert_eq!(out, "SELECT \u{fffd}\u{fffd} FROM t WHERE a = $1");
    assert_eq!(r.id, id_of(&out));
    normalize(b"SELECT caf\xc3", &mut out);
    assert_eq!(out, "SELECT caf\u{fffd}");
}

#[test]
fn the_output_buffer_is_reused() {
    let mut out = String::with_capacity(1024);
    let ptr = out.as_ptr();
    normalize(b"SELECT 1", &mut out);
    normalize(b"SELECT * FROM t WHERE a IN (1, 2, 3)", &mut out);
    assert_eq!(out, "SELECT * FROM t WHERE a IN ($1 /*, ... */)");
    assert_eq!(out.as_ptr(), ptr);
}

#[test]
fn normalizing_normalized_text_changes_nothing() {
    for sql in [
        "SELECT * FROM t WHERE a IN (1, 2) AND b = $1 LIMIT 21",
        "SELECT 1 AS \"a\" FROM t WHERE x = $1 LIMIT 1",
        "INSERT INTO t VALUES (1, NULL), (2, 'x') RETURNING id",
        "SAVEPOINT \"s1_x2\"",
        "SELECT DATE '2024-01-01' - -1, x::varchar(3)",
    ] {
        let once = n(sql);
        assert_eq!(n(&once), once, "{sql}");
    }
}

// ---- ids --------------------------------------------------------------------------------------

#[test]
fn id_is_xxh3_64_of_the_normalized_text() {
    // XXH3-64 of the empty input with seed 0, from the reference implementation.
    assert_eq!(id_of(""), 0x2d06_8005_38d3_94c2);
    let (text, r) = nn("select 1");
    assert_eq!(r.id, id_of(&text));
    assert_eq!(id_hex(r.id).len(), 16);
    assert_eq!(id_hex(0xab), "00000000000000ab");
    let (text, r2) = nn("SELECT 2");
    assert_eq!((r2.id, text.as_str()), (id_of("SELECT $1"), "SELECT $1"));
}

/// Ids are a contract (dashboards and alert rules key on them): a change here must be
/// deliberate and announced.
#[test]
fn golden_ids() {
    let golden = [
        ("", "2d06800538d394c2"),
        ("SELECT 1", "8426bb8b680edd67"),
        ("BEGIN", "83da8889aeda0595"),
        (
            "SELECT \"shop_book\".\"id\", \"shop_book\".\"title\" FROM \"shop_book\" WHERE \"shop_book\".\"id\" = 42 LIMIT 21",
            "1f2403325602ae4a",
        ),
        (
            "SELECT \"shop_book\".\"id\" FROM \"shop_book\" WHERE \"shop_book\".\"author_id\" IN (1, 2, 3)",
            "289ca59259f9caa5",
        ),
        ("SAVEPOINT \"s140355385_x2\"", "03a16c75f6ea7250"),
        ("UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 1;", "81b70fc2a9f1ef3a"),
    ];
    for (sql, hex) in golden {
        let (text, r) = nn(sql);
        assert_eq!(id_hex(r.id), hex, "{sql} → {text}");
    }
}

#[test]
fn debug_output_holds_no_literals() {
    let (_, r) = nn("SELECT * FROM t WHERE password = 'hunter2' /*route='r'*/");
    let shown = format!("{r:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        !shown.contains(&format!("{:x}", r.literal_digest)),
        "{shown}"
    );
    assert!(shown.contains(&id_hex(r.id)), "{shown}");
}

// ---- robustness ---------------------------------------------------------------------------------

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "SELECT",
    " ",
    "\n",
    "'",
    "''",
    "\"",
    "$",
    "$1",
    "$$",
    "$a$",
    "E'",
    "\\",
    "U&'",
    "U&\"",
    "UESCAPE",
    "B'",
    "X'",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ".",
    "::",
    ":",
    "-",
    "+",
    "=",
    "<>",
    "IN",
    "VALUES",
    "ARRAY",
    "NULL",
    "TRUE",
    "IS",
    "NOT",
    "DEFAULT",
    "1",
    "2.5",
    "1e",
    "0x",
    "_",
    "a",
    "\"s1_x2\"",
    "SAVEPOINT",
    "FETCH",
    "FROM",
    "DECLARE",
    "é",
    "\u{0}",
    "\u{7f}",
    "LIMIT",
    "WHERE",
    "x",
    "varchar",
    "FOR",
    "NO",
    "KEY",
    "UPDATE",
    "JOIN",
    "ON",
];

fn random_input(rng: &mut Rng) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..rng.below(40) {
        if rng.below(4) == 0 {
            input.push(rng.next() as u8);
        } else {
            input.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes());
        }
    }
    input
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::new();
    for _ in 0..20_000 {
        let input = random_input(&mut rng);
        let r = normalize(&input, &mut out);
        assert_eq!(r.id, id_of(&out));
        assert!(r.param_count >= r.literal_count.min(1));
        // Parsing what came out must not panic either.
        let _ = analyze(&out);
        let _ = analyze(&String::from_utf8_lossy(&input));
    }
}

#[test]
fn normalization_is_stable_on_token_soup() {
    // Normalizing twice gives what normalizing once gave, for inputs made of whole tokens.
    let mut rng = Rng(42);
    let words = [
        "SELECT", "a", "\"B\"", "FROM", "t", "WHERE", "=", "1", "'x'", "$1", "IN", "(", ")", ",",
        "AND", "-", "5", "VALUES", "NULL", "TRUE", "ARRAY", "[", "]", "::", "int", "LIMIT",
    ];
    for _ in 0..5_000 {
        let sql: Vec<&str> = (0..rng.below(30))
            .map(|_| words[rng.below(words.len())])
            .collect();
        let sql = sql.join(" ");
        let once = n(&sql);
        assert_eq!(n(&once), once, "{sql}");
    }
}

#[test]
fn literal_values_never_change_the_fingerprint() {
    // `{n}` is a number, `{s}` a string, `{l}` a list of numbers of random length, `{r}` a
    // list of VALUES rows of random length.
    let templates = [
        "SELECT * FROM t WHERE a = {n} AND b = {s} LIMIT {n}",
        "SELECT * FROM t WHERE a IN ({l}) AND b > {n}",
        "SELECT * FROM t WHERE a = ANY(ARRAY[{l}]) OFFSET {n}",
        "INSERT INTO t (a, b) VALUES {r} RETURNING id",
        "UPDATE t SET a = a + {n}, b = {s} WHERE c IN ({l})",
        "SELECT f({n}, {s}), x - {n}, {n} - x FROM t WHERE d BETWEEN {n} AND {n}",
    ];
    let mut rng = Rng(99);
    let number = |rng: &mut Rng| -> String {
        match rng.below(5) {
            0 => format!("-{}", rng.below(1000)),
            1 => format!("{}.{}", rng.below(100), rng.below(100)),
            2 => format!("{}e{}", rng.below(9) + 1, rng.below(20)),
            _ => rng.below(1_000_000).to_string(),
        }
    };
    for template in templates {
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut sql = String::new();
            let mut rest = template;
            while let Some(at) = rest.find('{') {
                sql.push_str(&rest[..at]);
                let kind = &rest[at + 1..at + 2];
                rest = &rest[at + 3..];
                match kind {
                    "n" => sql.push_str(&number(&mut rng)),
                    "s" => sql.push_str(&format!(
                        "'v{}''{}'",
                        rng.below(100),
                        "x".repeat(rng.below(5))
                    )),
                    "l" => {
                        let items: Vec<String> =
                            (0..1 + rng.below(20)).map(|_| number(&mut rng)).collect();
                        sql.push_str(&items.join(", "));
                    }
                    _ => {
                        let rows: Vec<String> = (0..1 + rng.below(5))
                            .map(|_| format!("({}, 'r{}')", number(&mut rng), rng.below(9)))
                            .collect();
                        sql.push_str(&rows.join(", "));
                    }
                }
            }
            sql.push_str(rest);
            ids.insert(nn(&sql).1.id);
        }
        assert_eq!(ids.len(), 1, "{template}");
    }
}

/// A statement of about 1 MB of each pathological shape is normalized in linear time: the lexer
/// never reads the input more than a few times over (lookahead for folded lists, a second pass
/// for numbering). Counted, not timed, so a slow machine cannot fail it.
#[test]
fn one_megabyte_statements_in_linear_time() {
    type Shape = (&'static str, Box<dyn Fn(usize) -> Vec<u8>>);
    let shapes: Vec<Shape> = vec![
        (
            "IN list",
            Box::new(|k| {
                let mut s = b"SELECT * FROM t WHERE a IN (".to_vec();
                for i in 0..k {
                    s.extend_from_slice(format!("{i}, ").as_bytes());
                }
                s.extend_from_slice(b"0)");
                s
            }),
        ),
        (
            "IN list that fails at the end",
            Box::new(|k| {
                let mut s = b"SELECT * FROM t WHERE a IN (".to_vec();
                s.extend(b"1, ".repeat(k * 2));
                s.extend_from_slice(b"f(x))");
                s
            }),
        ),
        (
            "VALUES rows",
            Box::new(|k| {
                let mut s = b"INSERT INTO t VALUES ".to_vec();
                s.extend(b"(1, 'x', NULL), ".repeat(k));
                s.extend_from_slice(b"(2, 'y', NULL)");
                s
            }),
        ),
        (
            "unterminated string",
            Box::new(|k| [b"SELECT '".as_slice(), &b"x".repeat(k * 5)].concat()),
        ),
        ("nested comments", Box::new(|k| b"/* ".repeat(k * 2))),
        (
            "dollar-quote near misses",
            Box::new(|k| {
                let tag = "$".to_string() + &"t".repeat(1000) + "$";
                let near = "$".to_string() + &"t".repeat(999) + "x";
                [tag.as_bytes(), &near.as_bytes().repeat(k / 200)].concat()
            }),
        ),
        (
            "parentheses",
            Box::new(|k| b"SELECT ((((((((((".repeat(k / 2)),
        ),
        (
            "unary minus before comments",
            Box::new(|k| b"= - /* c */ x ".repeat(k / 3)),
        ),
        ("IN IN IN", Box::new(|k| b"a IN (b IN (".repeat(k / 2))),
        (
            "random bytes",
            Box::new(|k| {
                let mut rng = Rng(7);
                (0..k * 5).map(|_| rng.next() as u8).collect()
            }),
        ),
    ];
    let mut out = String::new();
    for (name, make) in shapes {
        let input = make(200_000);
        assert!(input.len() >= 900_000, "{name}: {} bytes", input.len());
        lexer::work::take();
        let start = std::time::Instant::now();
        normalize(&input, &mut out);
        let elapsed = start.elapsed();
        let lexed = lexer::work::take();
        assert!(
            lexed <= 4 * input.len() + 16,
            "{name}: lexed {lexed} bytes for {} ({elapsed:?})",
            input.len()
        );
    }
}

#[test]
fn huge_in_list_folds() {
    let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let (text, r) = nn(&format!(
        "SELECT * FROM t WHERE a IN ({}) AND b = 1",
        list.join(", ")
    ));
    assert_eq!(
        text,
        "SELECT * FROM t WHERE a IN ($1 /*, ... */) AND b = $2"
    );
    assert_eq!(r.literal_count, 100_001);
}

// ---- analysis ---------------------------------------------------------------------------------

fn an(sql: &str) -> Analysis {
    analyze(&n(sql))
}

fn uses(a: &Analysis) -> Vec<String> {
    a.predicates
        .iter()
        .map(|u| {
            format!(
                "{}:{}.{} {}",
                u.clause.as_str(),
                u.table.as_deref().unwrap_or("?"),
                u.column,
                u.op
            )
        })
        .collect()
}

#[test]
fn kinds() {
    for (sql, kind) in [
        ("SELECT 1", Kind::Select),
        ("(SELECT 1) UNION (SELECT 2)", Kind::Select),
        ("VALUES (1)", Kind::Select),
        ("WITH x AS (SELECT 1) SELECT * FROM x", Kind::Select),
        (
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            Kind::Insert,
        ),
        (
            "WITH RECURSIVE x AS (SELECT 1) UPDATE t SET a = 1",
            Kind::Update,
        ),
        (
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            Kind::Select,
        ),
        ("INSERT INTO t VALUES (1)", Kind::Insert),
        ("UPDATE t SET a = 1", Kind::Update),
        ("DELETE FROM t", Kind::Delete),
        ("DECLARE c CURSOR FOR SELECT 1", Kind::Select),
        ("CREATE TABLE t (a int)", Kind::Ddl),
        ("ALTER TABLE t ADD COLUMN b int", Kind::Ddl),
        ("DROP TABLE t", Kind::Ddl),
        ("TRUNCATE t", Kind::Ddl),
        ("COMMENT ON TABLE t IS 'x'", Kind::Ddl),
        ("BEGIN", Kind::Transaction),
        (
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            Kind::Transaction,
        ),
        ("COMMIT", Kind::Transaction),
        ("END", Kind::Transaction),
        ("ROLLBACK TO SAVEPOINT \"s1_x1\"", Kind::Transaction),
        ("SAVEPOINT a", Kind::Transaction),
        ("RELEASE SAVEPOINT a", Kind::Transaction),
        ("PREPARE TRANSACTION 'x'", Kind::Transaction),
        ("PREPARE p AS SELECT 1", Kind::Other),
        ("SET TIME ZONE 'UTC'", Kind::Other),
        ("SHOW server_version", Kind::Other),
        ("FETCH FORWARD 10 FROM c", Kind::Other),
        ("EXPLAIN SELECT 1", Kind::Other),
        ("COPY t FROM STDIN", Kind::Other),
        ("", Kind::Other),
        ("(", Kind::Other),
        ("'x'", Kind::Other),
    ] {
        assert_eq!(an(sql).kind, kind, "{sql}");
        assert_eq!(analyze(sql).kind, kind, "raw: {sql}");
    }
    assert_eq!(Kind::Transaction.as_str(), "transaction");
    assert_eq!(Kind::Ddl.to_string(), "ddl");
}

#[test]
fn predicates_with_aliases_joins_and_order() {
    let a = an(
        "SELECT \"shop_book\".\"id\" FROM \"shop_book\" INNER JOIN \"shop_author\" \
         ON (\"shop_book\".\"author_id\" = \"shop_author\".\"id\") LEFT OUTER JOIN \"shop_author\" T3 \
         ON (\"shop_book\".\"editor_id\" = T3.\"id\") WHERE (T3.\"name\" = 'x' AND \"shop_book\".\"price\" \
         BETWEEN 1 AND 5 AND \"shop_book\".\"publisher_id\" IS NULL AND \"shop_book\".\"id\" IN (1, 2) \
         AND UPPER(\"shop_book\".\"title\"::text) LIKE UPPER('%x%') AND \"shop_book\".\"isbn\" LIKE 'x%') \
         ORDER BY \"shop_book\".\"title\" DESC, \"shop_book\".\"id\" FOR NO KEY UPDATE",
    );
    assert!(a.parsed);
    assert_eq!(a.kind, Kind::Select);
    assert_eq!(a.tables, ["shop_book", "shop_author"]);
    assert_eq!(
        uses(&a),
        [
            "join:shop_book.author_id =",
            "join:shop_author.id =",
            "join:shop_book.editor_id =",
            "where:shop_author.name =",
            "where:shop_book.price BETWEEN",
            "where:shop_book.publisher_id IS NULL",
            "where:shop_book.id IN",
            "where:shop_book.isbn LIKE",
            "order_by:shop_book.title DESC",
            "order_by:shop_book.id ASC",
        ]
    );
}

#[test]
fn predicates_in_update_delete_subqueries_and_unqualified() {
    let a = an("UPDATE \"shop_book\" SET \"stock\" = (\"shop_book\".\"stock\" - 1) WHERE \"shop_book\".\"id\" = 3");
    assert_eq!(
        (a.kind, a.tables.clone()),
        (Kind::Update, vec!["shop_book".to_string()])
    );
    assert_eq!(uses(&a), ["where:shop_book.id ="]);

    let a = an("DELETE FROM t WHERE a IN (SELECT b FROM u WHERE c > 1)");
    assert_eq!(a.tables, ["t", "u"]);
    assert_eq!(uses(&a), ["where:t.a IN", "where:u.c >"]);

    let a = an(
        "SELECT id FROM users WHERE email = $1 AND id = ANY($2::int[]) AND deleted_at IS NOT NULL",
    );
    assert_eq!(
        uses(&a),
        [
            "where:users.email =",
            "where:users.id = ANY",
            "where:users.deleted_at IS NOT NULL"
        ]
    );

    // Unqualified columns over two tables have no table.
    let a = an("SELECT * FROM a, b WHERE x = 1");
    assert_eq!(uses(&a), ["where:?.x ="]);

    // A correlated EXISTS: the inner alias and the outer table both resolve.
    let a = an(
        "SELECT \"shop_author\".\"id\", EXISTS(SELECT 1 AS \"a\" FROM \"shop_book\" U0 WHERE \
         U0.\"author_id\" = (\"shop_author\".\"id\") LIMIT 1) AS \"has_books\" FROM \"shop_author\"",
    );
    assert_eq!(a.tables, ["shop_author", "shop_book"]);
    assert_eq!(
        uses(&a),
        ["where:shop_book.author_id =", "where:shop_author.id ="]
    );

    // CTE names are not tables; the tables inside them are.
    let a = an("WITH x AS (SELECT * FROM t WHERE a = 1) SELECT * FROM x JOIN u USING (id)");
    assert_eq!(a.tables, ["t", "u"]);
    assert_eq!(uses(&a), ["where:t.a =", "join:?.id ="]);
    // Also when the only relations are CTEs (the walker finds no table, so the tokens are read).
    let a = an(
        "WITH x AS (SELECT 1 AS a), \"Y\" (b) AS MATERIALIZED (SELECT 2) SELECT * FROM x, \"Y\"",
    );
    assert!(a.parsed);
    assert!(a.tables.is_empty(), "{:?}", a.tables);

    // The cursor's query.
    let a = an("DECLARE \"_django_curs_1_sync_2\" NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM t WHERE a = 1");
    assert_eq!(
        (a.kind, a.tables.clone()),
        (Kind::Select, vec!["t".to_string()])
    );
    assert_eq!(uses(&a), ["where:t.a ="]);
}

#[test]
fn tables_from_tokens_when_sqlparser_gives_up() {
    // Not SQL sqlparser knows; the tables still come out.
    let a = analyze("SELECT * FROM \"shop_book\" b JOIN public.author a ON a.id = b.author_id WHERE $$ FOR KEY SHARE OF b SKIP LOCKED GARBAGE");
    assert!(!a.parsed);
    assert_eq!(a.tables, ["shop_book", "public.author"]);
    assert!(a.predicates.is_empty());

    let a = analyze("SELECT * FROM a, \"B\" AS b, c x WHERE EXTRACT(year FROM d) = 1 AND e IS DISTINCT FROM f ))");
    assert_eq!(a.tables, ["a", "B", "c"]);

    let a = analyze("SELECT * FROM generate_series(1, 10) AS g JOIN t ON true ((");
    assert_eq!(a.tables, ["t"]);

    // CTE names, however the CTE is written, are not tables; a name that only looks like one
    // (a function call with an alias) does not hide a table.
    let a = analyze("WITH RECURSIVE r (n) AS (SELECT 1 FROM seed), s AS NOT MATERIALIZED (SELECT * FROM r) SELECT * FROM r JOIN s ON true JOIN t ON true FOR NO KEY UPDATE OF t ((");
    assert!(!a.parsed);
    assert_eq!(a.tables, ["seed", "t"]);
    let a = analyze("SELECT a, f(b) AS f FROM f, g WHERE ((");
    assert_eq!(a.tables, ["f", "g"]);

    // DDL always reads its tables from the tokens.
    assert_eq!(
        an("CREATE TABLE IF NOT EXISTS \"shop_book\" (id int)").tables,
        ["shop_book"]
    );
    assert_eq!(
        an("CREATE INDEX \"i\" ON \"shop_book\" (\"a\")").tables,
        ["shop_book"]
    );
    assert_eq!(
        an("ALTER TABLE ONLY \"a\" ADD CONSTRAINT c FOREIGN KEY (x) REFERENCES \"b\" (id)").tables,
        ["a", "b"]
    );
    assert_eq!(an("TRUNCATE \"a\", \"b\" CASCADE").tables, ["a", "b"]);
    assert_eq!(
        an("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING").tables,
        ["t"]
    );
    assert!(an("FETCH FORWARD 5 FROM \"_django_curs_1_sync_1\"")
        .tables
        .is_empty());
    assert!(an("SELECT 1").tables.is_empty());
}

/// `f` on a thread with a stack of `bytes` (a stack overflow aborts the test process).
fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .unwrap();
    handle.join().expect("the thread panicked")
}

#[test]
fn deep_nesting_falls_back_without_exhausting_the_stack() {
    let deep = format!("SELECT {}1{} FROM t", "(".repeat(5000), ")".repeat(5000));
    let a = on_stack(2 << 20, move || analyze(&deep));
    assert_eq!(
        (a.kind, a.parsed, a.tables.clone()),
        (Kind::Select, false, vec!["t".to_string()])
    );
}

/// sqlparser builds operator chains in a loop, as deep as they are long, past its recursion
/// limit: a 32 KiB `SELECT $1+$1+…` aborted the process on the observer's stack (walking and
/// dropping the tree recurse once per level). Every chain-forming token is counted.
#[test]
fn long_operator_chains_fall_back_without_exhausting_the_stack() {
    let chains = [
        format!("SELECT {} FROM t", vec!["a"; 16_380].join("+")),
        format!("SELECT x{} FROM t", "::int".repeat(12_000)),
        format!("SELECT * FROM t WHERE {}", vec!["p"; 12_000].join(" AND ")),
        format!("SELECT * FROM t WHERE a{}", " IS NULL".repeat(8_000)),
        format!("SELECT x{} FROM t", "[1]".repeat(12_000)),
    ];
    for sql in chains {
        let head = sql[..24].to_string();
        let a = on_stack(2 << 20, move || analyze(&sql));
        assert_eq!(
            (a.kind, a.parsed, a.tables.clone()),
            (Kind::Select, false, vec!["t".to_string()]),
            "{head}…"
        );
    }
    // Up to the limit a chain is still parsed, on the stack the observer thread has (the walk
    // takes far more stack per level in a debug build than in a release one).
    let (or, chain) = on_stack(crate::observe::OBSERVER_STACK, || {
        let terms: Vec<String> = (0..500).map(|i| format!("\"t\".\"c\" = ${i}")).collect();
        let or = format!(
            "SELECT \"t\".\"id\" FROM \"t\" WHERE ({})",
            terms.join(" OR ")
        );
        let chain = format!("SELECT {} FROM t", vec!["a"; MAX_OPERATORS + 1].join("+"));
        (analyze(&or), analyze(&chain))
    });
    assert!(or.parsed && or.predicates.len() == 1, "{:?}", or.predicates);
    assert!(chain.parsed);
    assert!(
        !analyze(&format!(
            "SELECT {} FROM t",
            vec!["a"; MAX_OPERATORS + 2].join("+")
        ))
        .parsed
    );
    assert!(
        analyze(&format!(
            "SELECT {} FROM t",
            vec!["a"; MAX_OPERATORS + 1].join(",")
        ))
        .parsed
    );
}

#[test]
fn big_statements_skip_the_parser() {
    let sql = format!(
        "SELECT * FROM t WHERE {}",
        vec!["a = $1"; 20_000].join(" AND ")
    );
    assert!(sql.len() > MAX_PARSE_LEN);
    let a = analyze(&sql);
    assert_eq!(
        (a.kind, a.parsed, a.tables),
        (Kind::Select, false, vec!["t".to_string()])
    );
}

// ---- the corpus -------------------------------------------------------------------------------

struct Record {
    title: String,
    sql: String,
    normalized: String,
    kind: Option<String>,
    tables: Option<Vec<String>>,
}

fn corpus() -> Vec<Record> {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/django.sql"
    ));
    let mut records: Vec<Record> = Vec::new();
    let mut sql: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("-- @@ ") {
            records.push(Record {
                title: title.to_string(),
                sql: String::new(),
                normalized: String::new(),
                kind: None,
                tables: None,
            });
            sql.clear();
            continue;
        }
        let Some(r) = records.last_mut() else {
            continue;
        };
        if let Some(expected) = line.strip_prefix("-- => ") {
            r.sql = sql.join("\n");
            r.normalized = expected.to_string();
        } else if let Some(kind) = line.strip_prefix("-- kind: ") {
            r.kind = Some(kind.to_string());
        } else if let Some(tables) = line.strip_prefix("-- tables:") {
            r.tables = Some(
                tables
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect(),
            );
        } else if r.normalized.is_empty() {
            sql.push(line);
        }
    }
    records
}

#[test]
fn corpus_normalizes_as_expected() {
    let records = corpus();
    assert!(records.len() >= 80, "only {} records", records.len());
    let mut failures = Vec::new();
    for r in &records {
        assert!(
            !r.sql.is_empty() && !r.normalized.is_empty(),
            "malformed record {}",
            r.title
        );
        let got = n(&r.sql);
        if got != r.normalized {
            failures.push(format!(
                "{}\n  expected {}\n  got      {}",
                r.title, r.normalized, got
            ));
        }
        let a = analyze(&got);
        if let Some(kind) = &r.kind {
            if a.kind.as_str() != kind {
                failures.push(format!("{}: kind {} != {kind}", r.title, a.kind));
            }
        }
        if let Some(tables) = &r.tables {
            if &a.tables != tables {
                failures.push(format!("{}: tables {:?} != {tables:?}", r.title, a.tables));
            }
        }
        // Normalized text is a fixed point.
        assert_eq!(n(&got), got, "{}", r.title);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_driver_variants_share_fingerprints() {
    // Records with the same title before the `[client]` part are the same ORM call through
    // different drivers: they must share one fingerprint.
    let records = corpus();
    let mut by_call: std::collections::HashMap<&str, Vec<(&str, u64)>> = Default::default();
    for r in &records {
        let call = r.title.split(" [").next().unwrap();
        by_call
            .entry(call)
            .or_default()
            .push((&r.title, nn(&r.sql).1.id));
    }
    let mut groups = 0;
    for (call, variants) in by_call {
        if variants.len() > 1 {
            groups += 1;
            assert!(
                variants.iter().all(|v| v.1 == variants[0].1),
                "{call}: {variants:?}"
            );
        }
    }
    assert!(groups >= 8, "only {groups} groups of variants");
}

#[test]
fn django_statements_parse() {
    // Every Django statement of the corpus that is DML is understood by sqlparser after
    // normalization, so its predicates are known.
    for r in corpus() {
        let a = analyze(&r.normalized);
        let dml = matches!(
            a.kind,
            Kind::Select | Kind::Insert | Kind::Update | Kind::Delete
        );
        if dml && r.title.contains("[psycopg") {
            assert!(a.parsed, "{}: {}", r.title, r.normalized);
        }
    }
}
