-- @@ get() by primary key [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = 42 LIMIT 21
-- @@ get() by primary key [psycopg 3, server-side binding]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT 21
-- @@ filter() with two conditions and icontains [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= 10.50 AND UPPER("shop_book"."title"::text) LIKE UPPER('%django%')) ORDER BY "shop_book"."title" ASC
-- @@ filter() with two conditions and icontains [psycopg 3, server-side binding]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= $1 AND UPPER("shop_book"."title"::text) LIKE UPPER($2)) ORDER BY "shop_book"."title" ASC
-- @@ startswith and isnull [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."title"::text LIKE 'Dj%' AND "shop_book"."publisher_id" IS NULL)
-- @@ select_related(): INNER JOIN [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_author"."id", "shop_author"."name" FROM "shop_book" INNER JOIN "shop_author" ON ("shop_book"."author_id" = "shop_author"."id") WHERE "shop_author"."name" = 'Ada Lovelace'
-- @@ select_related() on a nullable FK: LEFT OUTER JOIN, with an alias [psycopg2]
SELECT "shop_book"."id", "shop_publisher"."id", "shop_publisher"."name", T4."id", T4."name" FROM "shop_book" LEFT OUTER JOIN "shop_publisher" ON ("shop_book"."publisher_id" = "shop_publisher"."id") INNER JOIN "shop_author" T4 ON ("shop_book"."editor_id" = T4."id") WHERE T4."name" = 'Grace'
-- @@ annotate(Count) with GROUP BY [psycopg2]
SELECT "shop_author"."id", "shop_author"."name", COUNT("shop_book"."id") AS "num_books" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id" HAVING COUNT("shop_book"."id") > 2 ORDER BY "num_books" DESC
-- @@ annotate(Count(filter=Q)) [psycopg2]
SELECT "shop_author"."id", COUNT("shop_book"."id") FILTER (WHERE "shop_book"."price" < 20) AS "cheap" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id"
-- @@ count() [psycopg2]
SELECT COUNT(*) AS "__count" FROM "shop_book" WHERE "shop_book"."price" > 10
-- @@ exists() [psycopg2]
SELECT 1 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = 5 LIMIT 1
-- @@ exists(): the literal 1 is numbered after the existing $1 [psycopg 3, server-side binding]
SELECT 1 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = $1 LIMIT 1
-- @@ Exists() annotation with a correlated subquery [psycopg2]
SELECT "shop_author"."id", EXISTS(SELECT 1 AS "a" FROM "shop_book" U0 WHERE U0."author_id" = ("shop_author"."id") LIMIT 1) AS "has_books" FROM "shop_author"
-- @@ prefetch_related() [psycopg2, 5 ids]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN (1, 2, 3, 4, 5)
-- @@ prefetch_related() [psycopg2, 1 id]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN (17)
-- @@ prefetch_related() [psycopg 3, server-side binding, 3 ids]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN ($1, $2, $3)
-- @@ pk__in with a later condition [psycopg 3, server-side binding]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN ($1, $2, $3, $4) AND "shop_book"."price" > $5) LIMIT 21
-- @@ pk__in with a later condition [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN (10, 11) AND "shop_book"."price" > 5) LIMIT 21
-- @@ uuid IN list [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."uuid" IN ('4b7e3e1c-2a8e-4c55-9b1e-0d7f3b0b7c11'::uuid, '9f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b'::uuid)
-- @@ select_for_update(no_key=True) with get() [psycopg2]
SELECT "shop_book"."id", "shop_book"."stock" FROM "shop_book" WHERE "shop_book"."id" = 7 LIMIT 21 FOR NO KEY UPDATE
-- @@ select_for_update(skip_locked=True, of=("self",)) [psycopg2]
SELECT "shop_job"."id", "shop_job"."state" FROM "shop_job" WHERE "shop_job"."state" = 'queued' ORDER BY "shop_job"."id" ASC LIMIT 10 FOR UPDATE OF "shop_job" SKIP LOCKED
-- @@ create() [psycopg2]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ('Dune', 3, NULL, 9.99, '1965-08-01'::date) RETURNING "shop_book"."id"
-- @@ create(), no casts [psycopg 3, server-side binding]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5) RETURNING "shop_book"."id"
-- @@ bulk_create() [psycopg2, 3 rows]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ('A', 1, NULL, 1.00, '2024-01-01'::date), ('B', 2, 7, 2.50, '2024-01-02'::date), ('C', 1, NULL, 3.75, '2024-01-03'::date) RETURNING "shop_book"."id"
-- @@ bulk_create(), no casts [psycopg 3, server-side binding, 2 rows]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10) RETURNING "shop_book"."id"
-- @@ bulk_create() with db_default fields [psycopg2]
INSERT INTO "shop_event" ("name", "created") VALUES ('a', DEFAULT), ('b', DEFAULT) RETURNING "shop_event"."id"
-- @@ bulk_create(ignore_conflicts=True) [psycopg2]
INSERT INTO "shop_tag" ("name") VALUES ('python'), ('django') ON CONFLICT DO NOTHING
-- @@ bulk_create(update_conflicts=True) [psycopg2]
INSERT INTO "shop_stock" ("sku", "qty") VALUES ('A-1', 5), ('B-2', 0) ON CONFLICT("sku") DO UPDATE SET "qty" = EXCLUDED."qty"
-- @@ bulk_create() through UNNEST (Django 5.2) [psycopg2]
INSERT INTO "shop_tag" ("name", "weight") SELECT * FROM UNNEST((ARRAY['python', 'django', 'rust'])::varchar(50)[], (ARRAY[1, 2, 3])::integer[]) RETURNING "shop_tag"."id"
-- @@ save() of an existing object [psycopg2]
UPDATE "shop_book" SET "title" = 'Dune Messiah', "author_id" = 3, "publisher_id" = NULL, "price" = 10.99, "published" = '1969-10-15'::date WHERE "shop_book"."id" = 12
-- @@ update() with an F() expression [psycopg2]
UPDATE "shop_book" SET "stock" = ("shop_book"."stock" - 1) WHERE "shop_book"."id" = 12
-- @@ delete() through the collector [psycopg2]
DELETE FROM "shop_book" WHERE "shop_book"."id" IN (12, 13, 14)
-- @@ delete() through the collector [psycopg 3, server-side binding]
DELETE FROM "shop_book" WHERE "shop_book"."id" IN ($1)
-- @@ iterator(): server-side cursor [psycopg2]
DECLARE "_django_curs_140355385_sync_3" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > 10
-- @@ iterator(): server-side cursor [psycopg2, another thread and counter]
DECLARE "_django_curs_139871123_sync_17" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > 99
-- @@ iterator(): fetch [psycopg2]
FETCH FORWARD 2000 FROM "_django_curs_140355385_sync_3"
-- @@ iterator(): close [psycopg2]
CLOSE "_django_curs_140355385_sync_3"
-- @@ iterator(): async cursor without hold [psycopg 3]
DECLARE "_django_curs_140355385_async_1" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT "shop_book"."id" FROM "shop_book"
-- @@ atomic(): begin [psycopg2]
BEGIN
-- @@ atomic(): nested savepoint [psycopg2]
SAVEPOINT "s140355385_x2"
-- @@ atomic(): nested savepoint [psycopg2, another thread]
SAVEPOINT "s139871123_x15"
-- @@ atomic(): release [psycopg2]
RELEASE SAVEPOINT "s140355385_x2"
-- @@ atomic(): roll back to savepoint [psycopg2]
ROLLBACK TO SAVEPOINT "s140355385_x2"
-- @@ atomic(): commit [psycopg2]
COMMIT
-- @@ connection setup: time zone [psycopg2]
SELECT set_config('TimeZone', 'UTC', false)
-- @@ sessions: load [psycopg2]
SELECT "django_session"."session_key", "django_session"."session_data", "django_session"."expire_date" FROM "django_session" WHERE ("django_session"."expire_date" > '2024-05-01T10:00:00.123456+00:00'::timestamptz AND "django_session"."session_key" = 'k3b9x0qv2m7c') LIMIT 21
-- @@ auth: update last_login [psycopg2]
UPDATE "auth_user" SET "last_login" = '2024-05-01T10:00:00.123456+00:00'::timestamptz WHERE "auth_user"."id" = 1
-- @@ auth: active users (boolean field) [psycopg2]
SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE ("auth_user"."is_active" AND "auth_user"."is_staff" = true)
-- @@ contenttypes: get_for_model [psycopg2]
SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type" WHERE ("django_content_type"."app_label" = 'shop' AND "django_content_type"."model" = 'book') LIMIT 21
-- @@ date range (__year) [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" BETWEEN '2024-01-01T00:00:00+00:00'::timestamptz AND '2024-12-31T23:59:59.999999+00:00'::timestamptz
-- @@ __month lookup with EXTRACT [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE EXTRACT(MONTH FROM "shop_order"."created" AT TIME ZONE 'UTC') = 3
-- @@ JSONField key lookup [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."meta" -> 'color') = '"red"'::jsonb
-- @@ pagination [psycopg2]
SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" ORDER BY "shop_book"."id" ASC LIMIT 20 OFFSET 40
-- @@ distinct values_list [psycopg2]
SELECT DISTINCT "shop_book"."author_id" FROM "shop_book" ORDER BY "shop_book"."author_id" ASC
-- @@ window function [psycopg2]
SELECT "shop_book"."id", ROW_NUMBER() OVER (PARTITION BY "shop_book"."author_id" ORDER BY "shop_book"."price" DESC) AS "rank" FROM "shop_book"
-- @@ CASE WHEN annotation [psycopg2]
SELECT "shop_book"."id", CASE WHEN "shop_book"."price" < 10 THEN 'cheap' WHEN "shop_book"."price" < 50 THEN 'fair' ELSE 'dear' END AS "band" FROM "shop_book"
-- @@ full text search [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE to_tsvector(COALESCE("shop_book"."title", '')) @@ plainto_tsquery('english'::regconfig, 'django orm')
-- @@ migrations: applied [psycopg2]
SELECT "django_migrations"."id", "django_migrations"."app", "django_migrations"."name", "django_migrations"."applied" FROM "django_migrations"
-- @@ migrations: table introspection [psycopg2]
SELECT
    c.relname,
    CASE
        WHEN c.relispartition THEN 'p'
        WHEN c.relkind IN ('m', 'v') THEN 'v'
        ELSE 't'
    END,
    obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v')
    AND n.nspname NOT IN ('pg_catalog', 'pg_toast')
    AND pg_catalog.pg_table_is_visible(c.oid)
-- @@ migrations: create table [psycopg2]
CREATE TABLE "shop_book" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "title" varchar(200) NOT NULL, "price" numeric(10, 2) NOT NULL, "in_stock" boolean DEFAULT true NOT NULL)
-- @@ migrations: create index [psycopg2]
CREATE INDEX "shop_book_author_id_6e1f4b5e" ON "shop_book" ("author_id")
-- @@ migrations: foreign key [psycopg2]
ALTER TABLE "shop_book" ADD CONSTRAINT "shop_book_author_id_8f2b1d3c_fk_shop_author_id" FOREIGN KEY ("author_id") REFERENCES "shop_author" ("id") DEFERRABLE INITIALLY DEFERRED
-- @@ tests: flush [psycopg2]
TRUNCATE "shop_book", "shop_author" RESTART IDENTITY CASCADE;
-- @@ sqlcommenter-tagged query [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = 42 LIMIT 21 /*controller='book_detail',db_driver='django.db.backends.postgresql',framework='django%%3A4.2.7',route='%%5Ebooks/%%3Cint%%3Apk%%3E/%%24'*/
-- @@ raw cursor, hand-written SQL [psycopg2]
select id, title
  from shop_book
 where author_id = 5   -- the author
   and title <> 'x'
-- @@ ANY(ARRAY[…]) from a Python list [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = ANY(ARRAY[1, 2, 3])
-- @@ negative numbers [psycopg2]
SELECT "shop_tx"."id" FROM "shop_tx" WHERE ("shop_tx"."amount" = -5 AND "shop_tx"."balance" > ("shop_tx"."limit" - 5))
-- @@ pgbench: update accounts [pgbench, simple]
UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 89012;
-- @@ pgbench: update accounts [pgbench, extended]
UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;
-- @@ pgbench: select balance [pgbench, simple]
SELECT abalance FROM pgbench_accounts WHERE aid = 89012;
-- @@ pgbench: update tellers [pgbench, simple]
UPDATE pgbench_tellers SET tbalance = tbalance + 1234 WHERE tid = 7;
-- @@ pgbench: update branches [pgbench, simple]
UPDATE pgbench_branches SET bbalance = bbalance + 1234 WHERE bid = 1;
-- @@ pgbench: history [pgbench, simple]
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 89012, 1234, CURRENT_TIMESTAMP);
-- @@ pgbench: history [pgbench, extended]
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);
-- @@ pgbench: end [pgbench]
END;
-- @@ asyncpg: fetch by id [asyncpg]
SELECT id, email FROM users WHERE id = $1
-- @@ asyncpg: any() with an array parameter [asyncpg]
SELECT id FROM users WHERE id = ANY($1::int[]) AND active
-- @@ asyncpg: insert [asyncpg]
INSERT INTO events(kind, payload) VALUES($1, $2::jsonb) RETURNING id
-- @@ asyncpg: connection reset, part 1 [asyncpg]
SELECT pg_advisory_unlock_all()
-- @@ asyncpg: connection reset, part 2 [asyncpg]
CLOSE ALL
-- @@ asyncpg: connection reset, part 3 [asyncpg]
RESET ALL
-- @@ asyncpg: type introspection [asyncpg]
WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype, attrtypoids, attrnames, depth) AS (
    SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim, ti.range_subtype, ti.attrtypoids, ti.attrnames, 0
    FROM (SELECT t.oid AS oid, ns.nspname AS ns, t.typname AS name, t.typtype AS kind FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace)) AS ti
    WHERE ti.oid = any($1::oid[])
)
SELECT DISTINCT * FROM typeinfo_tree ORDER BY depth DESC
-- @@ psycopg 3: prepared statement eviction [psycopg 3]
DEALLOCATE _pg3_12
-- @@ SQL-level prepared statement [psql]
PREPARE __asyncpg_stmt_1a__ AS SELECT * FROM users WHERE id = $1
-- @@ SQL-level execute [psql]
EXECUTE __asyncpg_stmt_1a__(42)
-- @@ negative number [psycopg 3, client-side binding]
UPDATE "shop_tx" SET "amount" =  -42 WHERE "shop_tx"."id" = 5
-- @@ timestamptz comparison [psycopg 3, client-side binding]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" > '2024-05-01 10:00:00+00:00'::timestamptz ORDER BY "shop_order"."created" DESC LIMIT 10
-- @@ bulk_update(): CASE per object, not folded [psycopg2]
UPDATE "shop_book" SET "price" = CASE WHEN ("shop_book"."id" = 1) THEN 9.99 WHEN ("shop_book"."id" = 2) THEN 19.99 ELSE NULL END WHERE "shop_book"."id" IN (1, 2)
-- @@ get_or_create(): insert inside a savepoint [psycopg2]
INSERT INTO "shop_tag" ("name") VALUES ('orm') RETURNING "shop_tag"."id"
-- @@ JSONField contains [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."meta" @> '{"tags": ["x"]}'::jsonb
-- @@ bytea and E-string [psycopg2]
UPDATE "shop_blob" SET "data" = '\x4142'::bytea, "note" = E'line\nbreak' WHERE "shop_blob"."id" = 3
-- @@ DO block with dollar quoting [psql]
DO $$BEGIN RAISE NOTICE 'hi'; END$$
