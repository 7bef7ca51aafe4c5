"""A lending library: branches and their members, authors, publishers, books with tags, loans.

Every model name is one word and no relation sets `related_name`, so the names pgscope derives
from the wire (table `library_<model>`, column `<field>_id`, reverse accessor `<model>_set`,
M2M table `library_<model>_<field>`) are exactly the Django names.
"""

from django.db import models


class Branch(models.Model):
    name = models.CharField(max_length=100, unique=True)
    city = models.CharField(max_length=100)


class Member(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT)


class Author(models.Model):
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=100)


class Publisher(models.Model):
    name = models.CharField(max_length=100)


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)


class Book(models.Model):
    title = models.CharField(max_length=200)
    year = models.IntegerField()
    author = models.ForeignKey(Author, on_delete=models.PROTECT)
    publisher = models.ForeignKey(Publisher, on_delete=models.PROTECT)
    tags = models.ManyToManyField(Tag)


class Loan(models.Model):
    book = models.ForeignKey(Book, on_delete=models.PROTECT)
    member = models.ForeignKey(Member, on_delete=models.PROTECT)
    borrowed_on = models.DateField()
    returned = models.BooleanField(default=False)


class Visit(models.Model):
    """Written by the bulk_create view; nothing reads it back."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT)
    day = models.DateField()
