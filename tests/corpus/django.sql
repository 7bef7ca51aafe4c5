-- Corpus of real SQL as clients send it to PostgreSQL, with the normalized text pgscope must
-- produce for each. Read by the fingerprint unit tests (src/fingerprint/tests.rs) and by the
-- normalizer benchmark (benches/normalize.rs).
--
-- Format: a record starts with a line `-- @@ <title> [<client>]`; the statement follows, exactly
-- as the client sends it (possibly over several lines, no terminator added); then
--   -- => <normalized text>      (required, one line)
--   -- kind: <kind>              (optional, checked against analyze())
--   -- tables: <a>, <b>          (optional, checked against analyze(); empty means none)
-- Lines before the first record are ignored. A statement line never starts with `-- =>`.
--
-- Django's SQL comes from its PostgreSQL backend (4.2 / 5.x). psycopg2 and psycopg 3 with
-- client-side binding interpolate literals into the text; psycopg 3 with server-side binding and
-- asyncpg send `$n`; pgbench sends literals with `-M simple` and `$n` with `-M extended`.
-- Records whose texts are equal must share a fingerprint: that is the point of normalization.


-- @@ get() by primary key [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = 42 LIMIT 21
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT $2
-- kind: select
-- tables: shop_book
-- @@ get() by primary key [psycopg 3, server-side binding]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT 21
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_book"."publisher_id", "shop_book"."price", "shop_book"."published" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT $2
-- kind: select
-- tables: shop_book
-- @@ filter() with two conditions and icontains [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= 10.50 AND UPPER("shop_book"."title"::text) LIKE UPPER('%django%')) ORDER BY "shop_book"."title" ASC
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= $1 AND upper("shop_book"."title"::text) LIKE upper($2)) ORDER BY "shop_book"."title" ASC
-- kind: select
-- tables: shop_book
-- @@ filter() with two conditions and icontains [psycopg 3, server-side binding]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= $1 AND UPPER("shop_book"."title"::text) LIKE UPPER($2)) ORDER BY "shop_book"."title" ASC
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."price" FROM "shop_book" WHERE ("shop_book"."price" >= $1 AND upper("shop_book"."title"::text) LIKE upper($2)) ORDER BY "shop_book"."title" ASC
-- kind: select
-- tables: shop_book
-- @@ startswith and isnull [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."title"::text LIKE 'Dj%' AND "shop_book"."publisher_id" IS NULL)
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."title"::text LIKE $1 AND "shop_book"."publisher_id" IS NULL)
-- kind: select
-- tables: shop_book
-- @@ select_related(): INNER JOIN [psycopg2]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_author"."id", "shop_author"."name" FROM "shop_book" INNER JOIN "shop_author" ON ("shop_book"."author_id" = "shop_author"."id") WHERE "shop_author"."name" = 'Ada Lovelace'
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id", "shop_author"."id", "shop_author"."name" FROM "shop_book" INNER JOIN "shop_author" ON ("shop_book"."author_id" = "shop_author"."id") WHERE "shop_author"."name" = $1
-- kind: select
-- tables: shop_book, shop_author
-- @@ select_related() on a nullable FK: LEFT OUTER JOIN, with an alias [psycopg2]
SELECT "shop_book"."id", "shop_publisher"."id", "shop_publisher"."name", T4."id", T4."name" FROM "shop_book" LEFT OUTER JOIN "shop_publisher" ON ("shop_book"."publisher_id" = "shop_publisher"."id") INNER JOIN "shop_author" T4 ON ("shop_book"."editor_id" = T4."id") WHERE T4."name" = 'Grace'
-- => SELECT "shop_book"."id", "shop_publisher"."id", "shop_publisher"."name", t4."id", t4."name" FROM "shop_book" LEFT OUTER JOIN "shop_publisher" ON ("shop_book"."publisher_id" = "shop_publisher"."id") INNER JOIN "shop_author" t4 ON ("shop_book"."editor_id" = t4."id") WHERE t4."name" = $1
-- kind: select
-- tables: shop_book, shop_publisher, shop_author
-- @@ annotate(Count) with GROUP BY [psycopg2]
SELECT "shop_author"."id", "shop_author"."name", COUNT("shop_book"."id") AS "num_books" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id" HAVING COUNT("shop_book"."id") > 2 ORDER BY "num_books" DESC
-- => SELECT "shop_author"."id", "shop_author"."name", count("shop_book"."id") AS "num_books" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id" HAVING count("shop_book"."id") > $1 ORDER BY "num_books" DESC
-- kind: select
-- tables: shop_author, shop_book
-- @@ annotate(Count(filter=Q)) [psycopg2]
SELECT "shop_author"."id", COUNT("shop_book"."id") FILTER (WHERE "shop_book"."price" < 20) AS "cheap" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id"
-- => SELECT "shop_author"."id", count("shop_book"."id") FILTER (WHERE "shop_book"."price" < $1) AS "cheap" FROM "shop_author" LEFT OUTER JOIN "shop_book" ON ("shop_author"."id" = "shop_book"."author_id") GROUP BY "shop_author"."id"
-- kind: select
-- tables: shop_author, shop_book
-- @@ count() [psycopg2]
SELECT COUNT(*) AS "__count" FROM "shop_book" WHERE "shop_book"."price" > 10
-- => SELECT count(*) AS "__count" FROM "shop_book" WHERE "shop_book"."price" > $1
-- kind: select
-- tables: shop_book
-- @@ exists() [psycopg2]
SELECT 1 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = 5 LIMIT 1
-- => SELECT $1 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = $2 LIMIT $3
-- kind: select
-- tables: shop_book
-- @@ exists(): the literal 1 is numbered after the existing $1 [psycopg 3, server-side binding]
SELECT 1 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = $1 LIMIT 1
-- => SELECT $2 AS "a" FROM "shop_book" WHERE "shop_book"."author_id" = $1 LIMIT $3
-- kind: select
-- tables: shop_book
-- @@ Exists() annotation with a correlated subquery [psycopg2]
SELECT "shop_author"."id", EXISTS(SELECT 1 AS "a" FROM "shop_book" U0 WHERE U0."author_id" = ("shop_author"."id") LIMIT 1) AS "has_books" FROM "shop_author"
-- => SELECT "shop_author"."id", EXISTS(SELECT $1 AS "a" FROM "shop_book" u0 WHERE u0."author_id" = ("shop_author"."id") LIMIT $2) AS "has_books" FROM "shop_author"
-- kind: select
-- tables: shop_author, shop_book
-- @@ prefetch_related() [psycopg2, 5 ids]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN (1, 2, 3, 4, 5)
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN ($1 /*, ... */)
-- kind: select
-- tables: shop_book
-- @@ prefetch_related() [psycopg2, 1 id]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN (17)
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN ($1 /*, ... */)
-- kind: select
-- tables: shop_book
-- @@ prefetch_related() [psycopg 3, server-side binding, 3 ids]
SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN ($1, $2, $3)
-- => SELECT "shop_book"."id", "shop_book"."title", "shop_book"."author_id" FROM "shop_book" WHERE "shop_book"."author_id" IN ($1 /*, ... */)
-- kind: select
-- tables: shop_book
-- @@ pk__in with a later condition [psycopg 3, server-side binding]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN ($1, $2, $3, $4) AND "shop_book"."price" > $5) LIMIT 21
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN ($1 /*, ... */) AND "shop_book"."price" > $2) LIMIT $3
-- kind: select
-- tables: shop_book
-- @@ pk__in with a later condition [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN (10, 11) AND "shop_book"."price" > 5) LIMIT 21
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."id" IN ($1 /*, ... */) AND "shop_book"."price" > $2) LIMIT $3
-- kind: select
-- tables: shop_book
-- @@ uuid IN list [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."uuid" IN ('4b7e3e1c-2a8e-4c55-9b1e-0d7f3b0b7c11'::uuid, '9f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b'::uuid)
-- => SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."uuid" IN ($1::uuid /*, ... */)
-- kind: select
-- tables: shop_order
-- @@ select_for_update(no_key=True) with get() [psycopg2]
SELECT "shop_book"."id", "shop_book"."stock" FROM "shop_book" WHERE "shop_book"."id" = 7 LIMIT 21 FOR NO KEY UPDATE
-- => SELECT "shop_book"."id", "shop_book"."stock" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT $2 FOR NO KEY UPDATE
-- kind: select
-- tables: shop_book
-- @@ select_for_update(skip_locked=True, of=("self",)) [psycopg2]
SELECT "shop_job"."id", "shop_job"."state" FROM "shop_job" WHERE "shop_job"."state" = 'queued' ORDER BY "shop_job"."id" ASC LIMIT 10 FOR UPDATE OF "shop_job" SKIP LOCKED
-- => SELECT "shop_job"."id", "shop_job"."state" FROM "shop_job" WHERE "shop_job"."state" = $1 ORDER BY "shop_job"."id" ASC LIMIT $2 FOR UPDATE OF "shop_job" SKIP LOCKED
-- kind: select
-- tables: shop_job
-- @@ create() [psycopg2]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ('Dune', 3, NULL, 9.99, '1965-08-01'::date) RETURNING "shop_book"."id"
-- => INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5::date) /*, ... */ RETURNING "shop_book"."id"
-- kind: insert
-- tables: shop_book
-- @@ create(), no casts [psycopg 3, server-side binding]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5) RETURNING "shop_book"."id"
-- => INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5) /*, ... */ RETURNING "shop_book"."id"
-- kind: insert
-- tables: shop_book
-- @@ bulk_create() [psycopg2, 3 rows]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ('A', 1, NULL, 1.00, '2024-01-01'::date), ('B', 2, 7, 2.50, '2024-01-02'::date), ('C', 1, NULL, 3.75, '2024-01-03'::date) RETURNING "shop_book"."id"
-- => INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5::date) /*, ... */ RETURNING "shop_book"."id"
-- kind: insert
-- tables: shop_book
-- @@ bulk_create(), no casts [psycopg 3, server-side binding, 2 rows]
INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10) RETURNING "shop_book"."id"
-- => INSERT INTO "shop_book" ("title", "author_id", "publisher_id", "price", "published") VALUES ($1, $2, $3, $4, $5) /*, ... */ RETURNING "shop_book"."id"
-- kind: insert
-- tables: shop_book
-- @@ bulk_create() with db_default fields [psycopg2]
INSERT INTO "shop_event" ("name", "created") VALUES ('a', DEFAULT), ('b', DEFAULT) RETURNING "shop_event"."id"
-- => INSERT INTO "shop_event" ("name", "created") VALUES ($1, DEFAULT) /*, ... */ RETURNING "shop_event"."id"
-- kind: insert
-- tables: shop_event
-- @@ bulk_create(ignore_conflicts=True) [psycopg2]
INSERT INTO "shop_tag" ("name") VALUES ('python'), ('django') ON CONFLICT DO NOTHING
-- => INSERT INTO "shop_tag" ("name") VALUES ($1) /*, ... */ ON CONFLICT DO NOTHING
-- kind: insert
-- tables: shop_tag
-- @@ bulk_create(update_conflicts=True) [psycopg2]
INSERT INTO "shop_stock" ("sku", "qty") VALUES ('A-1', 5), ('B-2', 0) ON CONFLICT("sku") DO UPDATE SET "qty" = EXCLUDED."qty"
-- => INSERT INTO "shop_stock" ("sku", "qty") VALUES ($1, $2) /*, ... */ ON CONFLICT ("sku") DO UPDATE SET "qty" = excluded."qty"
-- kind: insert
-- tables: shop_stock
-- @@ bulk_create() through UNNEST (Django 5.2) [psycopg2]
INSERT INTO "shop_tag" ("name", "weight") SELECT * FROM UNNEST((ARRAY['python', 'django', 'rust'])::varchar(50)[], (ARRAY[1, 2, 3])::integer[]) RETURNING "shop_tag"."id"
-- => INSERT INTO "shop_tag" ("name", "weight") SELECT * FROM unnest((ARRAY[$1 /*, ... */])::VARCHAR(50)[], (ARRAY[$2 /*, ... */])::INTEGER[]) RETURNING "shop_tag"."id"
-- kind: insert
-- tables: shop_tag
-- @@ save() of an existing object [psycopg2]
UPDATE "shop_book" SET "title" = 'Dune Messiah', "author_id" = 3, "publisher_id" = NULL, "price" = 10.99, "published" = '1969-10-15'::date WHERE "shop_book"."id" = 12
-- => UPDATE "shop_book" SET "title" = $1, "author_id" = $2, "publisher_id" = $3, "price" = $4, "published" = $5::date WHERE "shop_book"."id" = $6
-- kind: update
-- tables: shop_book
-- @@ update() with an F() expression [psycopg2]
UPDATE "shop_book" SET "stock" = ("shop_book"."stock" - 1) WHERE "shop_book"."id" = 12
-- => UPDATE "shop_book" SET "stock" = ("shop_book"."stock" - $1) WHERE "shop_book"."id" = $2
-- kind: update
-- tables: shop_book
-- @@ delete() through the collector [psycopg2]
DELETE FROM "shop_book" WHERE "shop_book"."id" IN (12, 13, 14)
-- => DELETE FROM "shop_book" WHERE "shop_book"."id" IN ($1 /*, ... */)
-- kind: delete
-- tables: shop_book
-- @@ delete() through the collector [psycopg 3, server-side binding]
DELETE FROM "shop_book" WHERE "shop_book"."id" IN ($1)
-- => DELETE FROM "shop_book" WHERE "shop_book"."id" IN ($1 /*, ... */)
-- kind: delete
-- tables: shop_book
-- @@ iterator(): server-side cursor [psycopg2]
DECLARE "_django_curs_140355385_sync_3" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > 10
-- => DECLARE "_django_curs_N_sync_N" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > $1
-- kind: select
-- tables: shop_book
-- @@ iterator(): server-side cursor [psycopg2, another thread and counter]
DECLARE "_django_curs_139871123_sync_17" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > 99
-- => DECLARE "_django_curs_N_sync_N" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" WHERE "shop_book"."price" > $1
-- kind: select
-- tables: shop_book
-- @@ iterator(): fetch [psycopg2]
FETCH FORWARD 2000 FROM "_django_curs_140355385_sync_3"
-- => FETCH FORWARD $1 FROM "_django_curs_N_sync_N"
-- kind: other
-- tables: 
-- @@ iterator(): close [psycopg2]
CLOSE "_django_curs_140355385_sync_3"
-- => CLOSE "_django_curs_N_sync_N"
-- kind: other
-- tables: 
-- @@ iterator(): async cursor without hold [psycopg 3]
DECLARE "_django_curs_140355385_async_1" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT "shop_book"."id" FROM "shop_book"
-- => DECLARE "_django_curs_N_async_N" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT "shop_book"."id" FROM "shop_book"
-- kind: select
-- tables: shop_book
-- @@ atomic(): begin [psycopg2]
BEGIN
-- => BEGIN
-- kind: transaction
-- tables: 
-- @@ atomic(): nested savepoint [psycopg2]
SAVEPOINT "s140355385_x2"
-- => SAVEPOINT "sN_xN"
-- kind: transaction
-- tables: 
-- @@ atomic(): nested savepoint [psycopg2, another thread]
SAVEPOINT "s139871123_x15"
-- => SAVEPOINT "sN_xN"
-- kind: transaction
-- tables: 
-- @@ atomic(): release [psycopg2]
RELEASE SAVEPOINT "s140355385_x2"
-- => RELEASE SAVEPOINT "sN_xN"
-- kind: transaction
-- tables: 
-- @@ atomic(): roll back to savepoint [psycopg2]
ROLLBACK TO SAVEPOINT "s140355385_x2"
-- => ROLLBACK TO SAVEPOINT "sN_xN"
-- kind: transaction
-- tables: 
-- @@ atomic(): commit [psycopg2]
COMMIT
-- => COMMIT
-- kind: transaction
-- tables: 
-- @@ connection setup: time zone [psycopg2]
SELECT set_config('TimeZone', 'UTC', false)
-- => SELECT set_config($1, $2, $3)
-- kind: select
-- tables: 
-- @@ sessions: load [psycopg2]
SELECT "django_session"."session_key", "django_session"."session_data", "django_session"."expire_date" FROM "django_session" WHERE ("django_session"."expire_date" > '2024-05-01T10:00:00.123456+00:00'::timestamptz AND "django_session"."session_key" = 'k3b9x0qv2m7c') LIMIT 21
-- => SELECT "django_session"."session_key", "django_session"."session_data", "django_session"."expire_date" FROM "django_session" WHERE ("django_session"."expire_date" > $1::timestamptz AND "django_session"."session_key" = $2) LIMIT $3
-- kind: select
-- tables: django_session
-- @@ auth: update last_login [psycopg2]
UPDATE "auth_user" SET "last_login" = '2024-05-01T10:00:00.123456+00:00'::timestamptz WHERE "auth_user"."id" = 1
-- => UPDATE "auth_user" SET "last_login" = $1::timestamptz WHERE "auth_user"."id" = $2
-- kind: update
-- tables: auth_user
-- @@ auth: active users (boolean field) [psycopg2]
SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE ("auth_user"."is_active" AND "auth_user"."is_staff" = true)
-- => SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE ("auth_user"."is_active" AND "auth_user"."is_staff" = $1)
-- kind: select
-- tables: auth_user
-- @@ contenttypes: get_for_model [psycopg2]
SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type" WHERE ("django_content_type"."app_label" = 'shop' AND "django_content_type"."model" = 'book') LIMIT 21
-- => SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type" WHERE ("django_content_type"."app_label" = $1 AND "django_content_type"."model" = $2) LIMIT $3
-- kind: select
-- tables: django_content_type
-- @@ date range (__year) [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" BETWEEN '2024-01-01T00:00:00+00:00'::timestamptz AND '2024-12-31T23:59:59.999999+00:00'::timestamptz
-- => SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" BETWEEN $1::timestamptz AND $2::timestamptz
-- kind: select
-- tables: shop_order
-- @@ __month lookup with EXTRACT [psycopg2]
SELECT "shop_order"."id" FROM "shop_order" WHERE EXTRACT(MONTH FROM "shop_order"."created" AT TIME ZONE 'UTC') = 3
-- => SELECT "shop_order"."id" FROM "shop_order" WHERE EXTRACT(month FROM "shop_order"."created" AT TIME ZONE $1) = $2
-- kind: select
-- tables: shop_order
-- @@ JSONField key lookup [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."meta" -> 'color') = '"red"'::jsonb
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE ("shop_book"."meta" -> $1) = $2::jsonb
-- kind: select
-- tables: shop_book
-- @@ pagination [psycopg2]
SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" ORDER BY "shop_book"."id" ASC LIMIT 20 OFFSET 40
-- => SELECT "shop_book"."id", "shop_book"."title" FROM "shop_book" ORDER BY "shop_book"."id" ASC LIMIT $1 OFFSET $2
-- kind: select
-- tables: shop_book
-- @@ distinct values_list [psycopg2]
SELECT DISTINCT "shop_book"."author_id" FROM "shop_book" ORDER BY "shop_book"."author_id" ASC
-- => SELECT DISTINCT "shop_book"."author_id" FROM "shop_book" ORDER BY "shop_book"."author_id" ASC
-- kind: select
-- tables: shop_book
-- @@ window function [psycopg2]
SELECT "shop_book"."id", ROW_NUMBER() OVER (PARTITION BY "shop_book"."author_id" ORDER BY "shop_book"."price" DESC) AS "rank" FROM "shop_book"
-- => SELECT "shop_book"."id", row_number() OVER (PARTITION BY "shop_book"."author_id" ORDER BY "shop_book"."price" DESC) AS "rank" FROM "shop_book"
-- kind: select
-- tables: shop_book
-- @@ CASE WHEN annotation [psycopg2]
SELECT "shop_book"."id", CASE WHEN "shop_book"."price" < 10 THEN 'cheap' WHEN "shop_book"."price" < 50 THEN 'fair' ELSE 'dear' END AS "band" FROM "shop_book"
-- => SELECT "shop_book"."id", CASE WHEN "shop_book"."price" < $1 THEN $2 WHEN "shop_book"."price" < $3 THEN $4 ELSE $5 END AS "band" FROM "shop_book"
-- kind: select
-- tables: shop_book
-- @@ full text search [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE to_tsvector(COALESCE("shop_book"."title", '')) @@ plainto_tsquery('english'::regconfig, 'django orm')
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE to_tsvector(COALESCE("shop_book"."title", $1)) @@ plainto_tsquery($2::regconfig, $3)
-- kind: select
-- tables: shop_book
-- @@ migrations: applied [psycopg2]
SELECT "django_migrations"."id", "django_migrations"."app", "django_migrations"."name", "django_migrations"."applied" FROM "django_migrations"
-- => SELECT "django_migrations"."id", "django_migrations"."app", "django_migrations"."name", "django_migrations"."applied" FROM "django_migrations"
-- kind: select
-- tables: django_migrations
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
-- => SELECT c.relname, CASE WHEN c.relispartition THEN $1 WHEN c.relkind IN ($2 /*, ... */) THEN $3 ELSE $4 END, obj_description(c.oid, $5) FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ($6 /*, ... */) AND n.nspname NOT IN ($7 /*, ... */) AND pg_catalog.pg_table_is_visible(c.oid)
-- kind: select
-- tables: pg_catalog.pg_class, pg_catalog.pg_namespace
-- @@ migrations: create table [psycopg2]
CREATE TABLE "shop_book" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "title" varchar(200) NOT NULL, "price" numeric(10, 2) NOT NULL, "in_stock" boolean DEFAULT true NOT NULL)
-- => CREATE TABLE "shop_book" ("id" BIGINT NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "title" VARCHAR(200) NOT NULL, "price" NUMERIC(10, 2) NOT NULL, "in_stock" BOOLEAN DEFAULT $1 NOT NULL)
-- kind: ddl
-- tables: shop_book
-- @@ migrations: create index [psycopg2]
CREATE INDEX "shop_book_author_id_6e1f4b5e" ON "shop_book" ("author_id")
-- => CREATE INDEX "shop_book_author_id_6e1f4b5e" ON "shop_book" ("author_id")
-- kind: ddl
-- tables: shop_book
-- @@ migrations: foreign key [psycopg2]
ALTER TABLE "shop_book" ADD CONSTRAINT "shop_book_author_id_8f2b1d3c_fk_shop_author_id" FOREIGN KEY ("author_id") REFERENCES "shop_author" ("id") DEFERRABLE INITIALLY DEFERRED
-- => ALTER TABLE "shop_book" ADD CONSTRAINT "shop_book_author_id_8f2b1d3c_fk_shop_author_id" FOREIGN KEY ("author_id") REFERENCES "shop_author" ("id") DEFERRABLE INITIALLY DEFERRED
-- kind: ddl
-- tables: shop_book, shop_author
-- @@ tests: flush [psycopg2]
TRUNCATE "shop_book", "shop_author" RESTART IDENTITY CASCADE;
-- => TRUNCATE "shop_book", "shop_author" RESTART IDENTITY CASCADE
-- kind: ddl
-- tables: shop_book, shop_author
-- @@ sqlcommenter-tagged query [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = 42 LIMIT 21 /*controller='book_detail',db_driver='django.db.backends.postgresql',framework='django%%3A4.2.7',route='%%5Ebooks/%%3Cint%%3Apk%%3E/%%24'*/
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = $1 LIMIT $2
-- kind: select
-- tables: shop_book
-- @@ raw cursor, hand-written SQL [psycopg2]
select id, title
  from shop_book
 where author_id = 5   -- the author
   and title <> 'x'
-- => SELECT id, title FROM shop_book WHERE author_id = $1 AND title <> $2
-- kind: select
-- tables: shop_book
-- @@ ANY(ARRAY[…]) from a Python list [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = ANY(ARRAY[1, 2, 3])
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."id" = ANY(ARRAY[$1 /*, ... */])
-- kind: select
-- tables: shop_book
-- @@ negative numbers [psycopg2]
SELECT "shop_tx"."id" FROM "shop_tx" WHERE ("shop_tx"."amount" = -5 AND "shop_tx"."balance" > ("shop_tx"."limit" - 5))
-- => SELECT "shop_tx"."id" FROM "shop_tx" WHERE ("shop_tx"."amount" = $1 AND "shop_tx"."balance" > ("shop_tx"."limit" - $2))
-- kind: select
-- tables: shop_tx
-- @@ pgbench: update accounts [pgbench, simple]
UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 89012;
-- => UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2
-- kind: update
-- tables: pgbench_accounts
-- @@ pgbench: update accounts [pgbench, extended]
UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;
-- => UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2
-- kind: update
-- tables: pgbench_accounts
-- @@ pgbench: select balance [pgbench, simple]
SELECT abalance FROM pgbench_accounts WHERE aid = 89012;
-- => SELECT abalance FROM pgbench_accounts WHERE aid = $1
-- kind: select
-- tables: pgbench_accounts
-- @@ pgbench: update tellers [pgbench, simple]
UPDATE pgbench_tellers SET tbalance = tbalance + 1234 WHERE tid = 7;
-- => UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2
-- kind: update
-- tables: pgbench_tellers
-- @@ pgbench: update branches [pgbench, simple]
UPDATE pgbench_branches SET bbalance = bbalance + 1234 WHERE bid = 1;
-- => UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2
-- kind: update
-- tables: pgbench_branches
-- @@ pgbench: history [pgbench, simple]
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 89012, 1234, CURRENT_TIMESTAMP);
-- => INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)
-- kind: insert
-- tables: pgbench_history
-- @@ pgbench: history [pgbench, extended]
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);
-- => INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)
-- kind: insert
-- tables: pgbench_history
-- @@ pgbench: end [pgbench]
END;
-- => END
-- kind: transaction
-- tables: 
-- @@ asyncpg: fetch by id [asyncpg]
SELECT id, email FROM users WHERE id = $1
-- => SELECT id, email FROM users WHERE id = $1
-- kind: select
-- tables: users
-- @@ asyncpg: any() with an array parameter [asyncpg]
SELECT id FROM users WHERE id = ANY($1::int[]) AND active
-- => SELECT id FROM users WHERE id = ANY($1::INT[]) AND active
-- kind: select
-- tables: users
-- @@ asyncpg: insert [asyncpg]
INSERT INTO events(kind, payload) VALUES($1, $2::jsonb) RETURNING id
-- => INSERT INTO events (kind, payload) VALUES ($1, $2::jsonb) /*, ... */ RETURNING id
-- kind: insert
-- tables: events
-- @@ asyncpg: connection reset, part 1 [asyncpg]
SELECT pg_advisory_unlock_all()
-- => SELECT pg_advisory_unlock_all()
-- kind: select
-- tables: 
-- @@ asyncpg: connection reset, part 2 [asyncpg]
CLOSE ALL
-- => CLOSE ALL
-- kind: other
-- tables: 
-- @@ asyncpg: connection reset, part 3 [asyncpg]
RESET ALL
-- => RESET ALL
-- kind: other
-- tables: 
-- @@ asyncpg: type introspection [asyncpg]
WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype, attrtypoids, attrnames, depth) AS (
    SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim, ti.range_subtype, ti.attrtypoids, ti.attrnames, 0
    FROM (SELECT t.oid AS oid, ns.nspname AS ns, t.typname AS name, t.typtype AS kind FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace)) AS ti
    WHERE ti.oid = any($1::oid[])
)
SELECT DISTINCT * FROM typeinfo_tree ORDER BY depth DESC
-- => WITH RECURSIVE typeinfo_tree (oid, ns, name, kind, basetype, elemtype, elemdelim, range_subtype, attrtypoids, attrnames, depth) AS (SELECT ti.oid, ti.ns, ti.name, ti.kind, ti.basetype, ti.elemtype, ti.elemdelim, ti.range_subtype, ti.attrtypoids, ti.attrnames, $2 FROM (SELECT t.oid AS oid, ns.nspname AS ns, t.typname AS name, t.typtype AS kind FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace)) AS ti WHERE ti.oid = ANY($1::oid[])) SELECT DISTINCT * FROM typeinfo_tree ORDER BY depth DESC
-- kind: select
-- tables: pg_catalog.pg_type, pg_catalog.pg_namespace
-- @@ psycopg 3: prepared statement eviction [psycopg 3]
DEALLOCATE _pg3_12
-- => DEALLOCATE _pg3_N
-- kind: other
-- tables: 
-- @@ SQL-level prepared statement [psql]
PREPARE __asyncpg_stmt_1a__ AS SELECT * FROM users WHERE id = $1
-- => PREPARE __asyncpg_stmt_N__ AS SELECT * FROM users WHERE id = $1
-- kind: other
-- tables: users
-- @@ SQL-level execute [psql]
EXECUTE __asyncpg_stmt_1a__(42)
-- => EXECUTE __asyncpg_stmt_N__($1)
-- kind: other
-- tables: 
-- @@ negative number [psycopg 3, client-side binding]
UPDATE "shop_tx" SET "amount" =  -42 WHERE "shop_tx"."id" = 5
-- => UPDATE "shop_tx" SET "amount" = $1 WHERE "shop_tx"."id" = $2
-- kind: update
-- tables: shop_tx
-- @@ timestamptz comparison [psycopg 3, client-side binding]
SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" > '2024-05-01 10:00:00+00:00'::timestamptz ORDER BY "shop_order"."created" DESC LIMIT 10
-- => SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."created" > $1::timestamptz ORDER BY "shop_order"."created" DESC LIMIT $2
-- kind: select
-- tables: shop_order
-- @@ bulk_update(): CASE per object, not folded [psycopg2]
UPDATE "shop_book" SET "price" = CASE WHEN ("shop_book"."id" = 1) THEN 9.99 WHEN ("shop_book"."id" = 2) THEN 19.99 ELSE NULL END WHERE "shop_book"."id" IN (1, 2)
-- => UPDATE "shop_book" SET "price" = CASE WHEN ("shop_book"."id" = $1) THEN $2 WHEN ("shop_book"."id" = $3) THEN $4 ELSE NULL END WHERE "shop_book"."id" IN ($5 /*, ... */)
-- kind: update
-- tables: shop_book
-- @@ get_or_create(): insert inside a savepoint [psycopg2]
INSERT INTO "shop_tag" ("name") VALUES ('orm') RETURNING "shop_tag"."id"
-- => INSERT INTO "shop_tag" ("name") VALUES ($1) /*, ... */ RETURNING "shop_tag"."id"
-- kind: insert
-- tables: shop_tag
-- @@ JSONField contains [psycopg2]
SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."meta" @> '{"tags": ["x"]}'::jsonb
-- => SELECT "shop_book"."id" FROM "shop_book" WHERE "shop_book"."meta" @> $1::jsonb
-- kind: select
-- tables: shop_book
-- @@ bytea and E-string [psycopg2]
UPDATE "shop_blob" SET "data" = '\x4142'::bytea, "note" = E'line\nbreak' WHERE "shop_blob"."id" = 3
-- => UPDATE "shop_blob" SET "data" = $1::bytea, "note" = $2 WHERE "shop_blob"."id" = $3
-- kind: update
-- tables: shop_blob
-- @@ DO block with dollar quoting [psql]
DO $$BEGIN RAISE NOTICE 'hi'; END$$
-- => DO $1
-- kind: other
-- tables: 
