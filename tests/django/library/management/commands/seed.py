"""`manage.py seed`: empty every table of the app and fill it with the same rows every time.

| table | rows | how they relate |
| --- | --- | --- |
| branch | 10 | `Branch 01` … `Branch 10` |
| member | 30 | member i is at branch ((i-1) % 10) + 1 |
| author | 12 | |
| publisher | 12 | |
| tag | 8 | |
| book | 24 | book i: year 1990+i, author ((i-1) % 12) + 1, publisher (5i % 12) + 1, tags ((i-1) % 8) + 1 and ((i+2) % 8) + 1 |
| loan | 40 | loan i borrowed on 2024-01-01 + i days; 1–20 not returned, book i, member i; 21–40 returned, book ((i-1) % 24) + 1, member ((i-1) % 30) + 1 |
| visit | 0 | written by the bulk_create view |

So the current loans (20) have 20 different books; the first 10 returned loans have members
21–30, at 10 different branches; the 9 books before 2000 have 9 different authors and
publishers: every N+1 child lookup has a different parameter value. Ids are 1…n (identities
restarted).
"""

import datetime

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from library.models import Author, Book, Branch, Loan, Member, Publisher, Tag, Visit

CITIES = ["Lyon", "Porto", "Gent", "Turku", "Graz", "Brno", "Cork", "Bergen", "Pisa", "Split"]
TAGS = ["classic", "crime", "essay", "fantasy", "history", "poetry", "science", "travel"]

COUNTS = {"branch": 10, "member": 30, "author": 12, "publisher": 12, "tag": 8, "book": 24, "loan": 40}


class Command(BaseCommand):
    help = "Replace the library's rows with the deterministic demo data."

    def handle(self, *args, **options):
        tables = [m._meta.db_table for m in (Visit, Loan, Book.tags.through, Book, Tag, Publisher, Author, Member, Branch)]
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE %s RESTART IDENTITY CASCADE" % ", ".join(f'"{t}"' for t in tables))
            Branch.objects.bulk_create(
                Branch(name=f"Branch {i:02}", city=CITIES[i - 1]) for i in range(1, COUNTS["branch"] + 1)
            )
            Member.objects.bulk_create(
                Member(name=f"Member {i:02}", email=f"member{i}@example.org", branch_id=(i - 1) % 10 + 1)
                for i in range(1, COUNTS["member"] + 1)
            )
            Author.objects.bulk_create(
                Author(name=f"Author {i:02}", country=CITIES[i % 10]) for i in range(1, COUNTS["author"] + 1)
            )
            Publisher.objects.bulk_create(
                Publisher(name=f"Publisher {i:02}") for i in range(1, COUNTS["publisher"] + 1)
            )
            Tag.objects.bulk_create(Tag(name=name) for name in TAGS)
            Book.objects.bulk_create(
                Book(title=f"Book {i:02}", year=1990 + i, author_id=(i - 1) % 12 + 1, publisher_id=5 * i % 12 + 1)
                for i in range(1, COUNTS["book"] + 1)
            )
            Book.tags.through.objects.bulk_create(
                Book.tags.through(book_id=i, tag_id=tag)
                for i in range(1, COUNTS["book"] + 1)
                for tag in sorted({(i - 1) % 8 + 1, (i + 2) % 8 + 1})
            )
            start = datetime.date(2024, 1, 1)
            Loan.objects.bulk_create(
                Loan(
                    book_id=i if i <= 20 else (i - 1) % 24 + 1,
                    member_id=i if i <= 20 else (i - 1) % 30 + 1,
                    borrowed_on=start + datetime.timedelta(days=i),
                    returned=i > 20,
                )
                for i in range(1, COUNTS["loan"] + 1)
            )
        for model, n in [(Branch, 10), (Member, 30), (Author, 12), (Publisher, 12), (Tag, 8), (Book, 24), (Loan, 40)]:
            ids = list(model.objects.order_by("id").values_list("id", flat=True))
            assert ids == list(range(1, n + 1)), f"{model.__name__} ids: {ids}"
        if options["verbosity"] > 0:
            self.stdout.write("seeded: " + ", ".join(f"{k} {v}" for k, v in COUNTS.items()))
