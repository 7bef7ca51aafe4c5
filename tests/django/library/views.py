"""One view per pattern pgscope must report, its fixed version, and the look-alikes it must not
report. `scenarios.py` says what each one should produce; the data is `seed`'s.

The N+1s happen where they usually do: in a template that follows a relation for every row
of a list the view fetched.
"""

import datetime

from django.db.models import Count, Max, Min
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from .models import Author, Book, Branch, Loan, Member, Publisher, Tag, Visit

# --- N+1s and their fixes ---


def nplusone_fk(request):
    """Forward foreign key: `loan.book` for each current loan (20)."""
    loans = Loan.objects.filter(returned=False).order_by("borrowed_on")
    return render(request, "library/loans.html", {"loans": loans, "book": True})


def nplusone_fk_fixed(request):
    loans = Loan.objects.filter(returned=False).order_by("borrowed_on").select_related("book")
    return render(request, "library/loans.html", {"loans": loans, "book": True})


def nplusone_reverse_fk(request):
    """Reverse foreign key: `author.book_set.all` for each author (12)."""
    authors = Author.objects.order_by("name")
    return render(request, "library/authors.html", {"authors": authors})


def nplusone_reverse_fk_fixed(request):
    authors = Author.objects.order_by("name").prefetch_related("book_set")
    return render(request, "library/authors.html", {"authors": authors})


def nplusone_m2m(request):
    """Many-to-many: `book.tags.all` for each book (24)."""
    books = Book.objects.order_by("title")
    return render(request, "library/books_tags.html", {"books": books})


def nplusone_m2m_fixed(request):
    books = Book.objects.order_by("title").prefetch_related("tags")
    return render(request, "library/books_tags.html", {"books": books})


def nplusone_interleaved(request):
    """Two relations in one loop: `book.author` and `book.publisher` for 9 books, alternating."""
    books = Book.objects.filter(year__lt=2000).order_by("year")
    return render(request, "library/books_credits.html", {"books": books})


def nplusone_interleaved_fixed(request):
    books = Book.objects.filter(year__lt=2000).order_by("year").select_related("author", "publisher")
    return render(request, "library/books_credits.html", {"books": books})


def nplusone_nested(request):
    """A relation of a relation: `loan.member.branch` for 10 returned loans."""
    loans = Loan.objects.filter(returned=True).order_by("borrowed_on")[:10]
    return render(request, "library/loans.html", {"loans": loans, "member_branch": True})


def nplusone_nested_fixed(request):
    loans = (
        Loan.objects.filter(returned=True).order_by("borrowed_on").select_related("member__branch")[:10]
    )
    return render(request, "library/loans.html", {"loans": loans, "member_branch": True})


def nplusone_below_threshold(request):
    """`loan.book` for only 4 loans: fewer than --n1-threshold (5), not an N+1."""
    loans = Loan.objects.filter(returned=False).order_by("borrowed_on")[:4]
    return render(request, "library/loans.html", {"loans": loans, "book": True})


# --- duplicates ---


def home_branch():
    """What a context processor or template tag typically does, once per call."""
    return Branch.objects.get(name="Branch 01")


def duplicate(request):
    """The same lookup, same value, from four places in one request."""
    header = home_branch().name
    sidebar = home_branch().city
    footer = home_branch().name
    opening = home_branch().id
    return JsonResponse({"header": header, "sidebar": sidebar, "footer": footer, "id": opening})


def duplicate_fixed(request):
    branch = home_branch()
    return JsonResponse({"header": branch.name, "sidebar": branch.city, "footer": branch.name, "id": branch.id})


def duplicate_below_threshold(request):
    """The same lookup twice: one repeat, not yet a duplicate finding (it takes two)."""
    return JsonResponse({"header": home_branch().name, "footer": home_branch().city})


# --- look-alikes that are not N+1s ---


def dashboard(request):
    """Many different statements, each once."""
    data = {
        "branches": Branch.objects.count(),
        "members": Member.objects.count(),
        "authors": Author.objects.count(),
        "publishers": Publisher.objects.count(),
        "books": Book.objects.count(),
        "on_loan": Loan.objects.filter(returned=False).count(),
        "years": Book.objects.aggregate(first=Min("year"), last=Max("year")),
        "tags": list(Tag.objects.annotate(n=Count("book")).order_by("-n", "name").values_list("name", "n")),
        "busiest": list(
            Branch.objects.annotate(n=Count("member")).order_by("-n", "name").values_list("name", "n")[:3]
        ),
        "latest": Loan.objects.order_by("-borrowed_on").values_list("id", flat=True).first(),
    }
    return JsonResponse(data)


def book_detail(request, pk):
    """One book by primary key: the driver calls it for many books in a row."""
    book = get_object_or_404(Book, pk=pk)
    return JsonResponse({"id": book.id, "title": book.title})


def loans_export(request):
    """`.iterator()`: a server-side cursor read in chunks of 5, FETCH after FETCH."""
    ids = [loan.id for loan in Loan.objects.order_by("id").iterator(chunk_size=5)]
    return JsonResponse({"loans": len(ids)})


def visits_bulk_create(request):
    """bulk_create of 20 rows in batches of 4: five INSERTs of one shape after a 20-row SELECT."""
    members = list(Member.objects.order_by("id")[:20])
    day = datetime.date(2024, 6, 1)
    visits = [Visit(member=m, branch_id=m.branch_id, day=day) for m in members]
    Visit.objects.bulk_create(visits, batch_size=4)
    return JsonResponse({"visits": len(visits)})


def books_paginated(request):
    """A loop over 4 pages of 5 books, on purpose: a small count, not an N+1."""
    titles = []
    for offset in range(0, 20, 5):
        titles.extend(b.title for b in Book.objects.order_by("id")[offset : offset + 5])
    return JsonResponse({"titles": titles})
