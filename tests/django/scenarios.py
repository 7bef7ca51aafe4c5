"""What the driver runs, in this order, and what pgscope must report for it (SPEC.md: GET
/api/nplusone). `drive.py` runs these through the proxy and checks the findings; `record.py`
runs them directly against PostgreSQL and writes tests/fixtures/django_sequences.json.

A scenario is one or more requests. Its `expected` list holds one entry per finding it must
cause; an empty list means pgscope must report nothing for it. Findings are recognized by
substrings of their normalized query text (`match`, plus `parent_match` for the parent
query), which hold whatever normalization does with literals, keyword case and comments,
and by `route` when the sqlcommenter comments are on.

The numbers follow from `manage.py seed`'s data (see library/management/commands/seed.py)
and from --n1-threshold 5 (the default):

- an N+1 burst's size is the number of parent rows, each child lookup has its own value;
  `queries` (and pgscope_nplusone_queries_total) counts the child queries: the burst size
  for one burst;
- a duplicate is one statement with the same values 4 times in one request: `max_burst` and
  `queries` (and pgscope_duplicate_queries_total) count the 4 executions.
"""

N1_THRESHOLD = 5

SELECT_RELATED = "select_related"
PREFETCH_RELATED = "prefetch_related"
CACHE = "cache"


def by_id(table):
    """A child lookup by primary key (a forward foreign key being followed)."""
    return [f'FROM "{table}" WHERE "{table}"."id" = ']


def by_column(table, column):
    return [f'FROM "{table}" WHERE "{table}"."{column}" = ']


def n_plus_one(child, match, parent, parent_match, orm, model, field, burst):
    return {
        "kind": "n_plus_one",
        "child_table": child,
        "match": match,
        "parent_table": parent,
        "parent_match": parent_match,
        "orm": orm,
        "model": model,
        "field": field,
        "burst": burst,
        "bursts": 1,
        "queries": burst,
    }


def duplicate(child, match, model, executions):
    return {
        "kind": "duplicate",
        "child_table": child,
        "match": match,
        "parent_table": None,
        "parent_match": None,
        "orm": CACHE,
        "model": model,
        "field": None,
        "burst": executions,
        "bursts": 1,
        "queries": executions,
    }


CURRENT_LOANS = ['FROM "library_loan" WHERE NOT "library_loan"."returned" ORDER BY "library_loan"."borrowed_on" ASC']
RETURNED_LOANS = ['FROM "library_loan" WHERE "library_loan"."returned" ORDER BY "library_loan"."borrowed_on" ASC LIMIT']
AUTHORS = ['FROM "library_author" ORDER BY "library_author"."name" ASC']
BOOKS_BY_TITLE = ['FROM "library_book" ORDER BY "library_book"."title" ASC']
BOOKS_BEFORE_2000 = ['FROM "library_book" WHERE "library_book"."year" <']
M2M_TAGS = [
    'FROM "library_tag" INNER JOIN "library_book_tags" ON ("library_tag"."id" = "library_book_tags"."tag_id")',
    'WHERE "library_book_tags"."book_id" = ',
]


def scenario(name, route, expected=(), paths=None, persistent=False, about=""):
    return {
        "name": name,
        "route": route,
        "paths": paths or ["/" + route],
        "persistent": persistent,
        "expected": list(expected),
        "about": about,
    }


SCENARIOS = [
    scenario(
        "nplusone_fk",
        "n1/fk/",
        [n_plus_one("library_book", by_id("library_book"), "library_loan", CURRENT_LOANS,
                    SELECT_RELATED, "Loan", "book", 20)],
        about="loan.book for 20 current loans",
    ),
    scenario("nplusone_fk_fixed", "n1/fk/fixed/", about="select_related('book')"),
    scenario(
        "nplusone_reverse_fk",
        "n1/reverse-fk/",
        [n_plus_one("library_book", by_column("library_book", "author_id"), "library_author", AUTHORS,
                    PREFETCH_RELATED, "Author", "book_set", 12)],
        about="author.book_set.all for 12 authors",
    ),
    scenario("nplusone_reverse_fk_fixed", "n1/reverse-fk/fixed/", about="prefetch_related('book_set')"),
    scenario(
        "nplusone_m2m",
        "n1/m2m/",
        [n_plus_one("library_tag", M2M_TAGS, "library_book", BOOKS_BY_TITLE,
                    PREFETCH_RELATED, "Book", "tags", 24)],
        about="book.tags.all for 24 books",
    ),
    scenario("nplusone_m2m_fixed", "n1/m2m/fixed/", about="prefetch_related('tags')"),
    scenario(
        "nplusone_interleaved",
        "n1/interleaved/",
        [
            n_plus_one("library_author", by_id("library_author"), "library_book", BOOKS_BEFORE_2000,
                       SELECT_RELATED, "Book", "author", 9),
            n_plus_one("library_publisher", by_id("library_publisher"), "library_book", BOOKS_BEFORE_2000,
                       SELECT_RELATED, "Book", "publisher", 9),
        ],
        about="book.author and book.publisher, alternating, for 9 books",
    ),
    scenario("nplusone_interleaved_fixed", "n1/interleaved/fixed/", about="select_related('author', 'publisher')"),
    scenario(
        "nplusone_nested",
        "n1/nested/",
        [
            n_plus_one("library_member", by_id("library_member"), "library_loan", RETURNED_LOANS,
                       SELECT_RELATED, "Loan", "member", 10),
            n_plus_one("library_branch", by_id("library_branch"), "library_loan", RETURNED_LOANS,
                       SELECT_RELATED, "Loan", "member__branch", 10),
        ],
        about="loan.member.branch for 10 returned loans",
    ),
    scenario("nplusone_nested_fixed", "n1/nested/fixed/", about="select_related('member__branch')"),
    scenario("nplusone_below_threshold", "n1/below-threshold/", about="loan.book for 4 loans: below the threshold"),
    scenario(
        "duplicate",
        "duplicate/",
        [duplicate("library_branch", by_column("library_branch", "name"), "Branch", 4)],
        about="Branch.objects.get(name='Branch 01') four times",
    ),
    scenario("duplicate_fixed", "duplicate/fixed/", about="the same lookup once"),
    scenario("duplicate_below_threshold", "duplicate/below-threshold/", about="the same lookup twice: one repeat"),
    scenario("many_different_queries", "dashboard/", about="ten different statements, each once"),
    # Right after a 20-row SELECT that joined library_book, twelve requests that each look up
    # one book by primary key -- the N+1's child statement -- on one persistent connection
    # (CONN_MAX_AGE=None for these requests whatever the setting): only the request
    # boundaries (traceparent, or idle time without sqlcommenter) tell them from an N+1.
    scenario(
        "persistent_pk_lookups",
        "books/<int:pk>/",
        paths=["/n1/fk/fixed/"] + [f"/books/{pk}/" for pk in range(1, 13)],
        persistent=True,
        about="12 requests, one book each by pk, on one persistent connection",
    ),
    scenario("iterator", "loans/export/", about=".iterator(chunk_size=5) over 40 loans: DECLARE, 9 FETCH, CLOSE"),
    scenario("bulk_create", "visits/bulk-create/", about="a 20-row SELECT, then bulk_create in 5 batches of 4"),
    scenario("pagination_small", "books/pages/", about="4 pages of 5 books, on purpose"),
]


def scenario_names():
    return [s["name"] for s in SCENARIOS]
