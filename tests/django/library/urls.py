"""URL names are the views' names: opentelemetry's sqlcommenter writes them as `controller`
and the pattern as `route`."""

from django.urls import path

from . import views

VIEWS = [
    ("n1/fk/", views.nplusone_fk),
    ("n1/fk/fixed/", views.nplusone_fk_fixed),
    ("n1/reverse-fk/", views.nplusone_reverse_fk),
    ("n1/reverse-fk/fixed/", views.nplusone_reverse_fk_fixed),
    ("n1/m2m/", views.nplusone_m2m),
    ("n1/m2m/fixed/", views.nplusone_m2m_fixed),
    ("n1/interleaved/", views.nplusone_interleaved),
    ("n1/interleaved/fixed/", views.nplusone_interleaved_fixed),
    ("n1/nested/", views.nplusone_nested),
    ("n1/nested/fixed/", views.nplusone_nested_fixed),
    ("n1/below-threshold/", views.nplusone_below_threshold),
    ("duplicate/", views.duplicate),
    ("duplicate/fixed/", views.duplicate_fixed),
    ("duplicate/below-threshold/", views.duplicate_below_threshold),
    ("dashboard/", views.dashboard),
    ("books/<int:pk>/", views.book_detail),
    ("loans/export/", views.loans_export),
    ("visits/bulk-create/", views.visits_bulk_create),
    ("books/pages/", views.books_paginated),
]

urlpatterns = [path(route, view, name=view.__name__) for route, view in VIEWS]
