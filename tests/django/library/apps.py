from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "library"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings

        check_driver(settings.DRIVER)
        if settings.SQLCOMMENTER:
            from pgscope_demo.otel import instrument

            instrument(deterministic_ids=settings.SQLCOMMENTER_DETERMINISTIC_IDS)


def check_driver(driver):
    """Fail at start-up if the backend does not use the driver the settings asked for."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if is_psycopg3 != (driver != "psycopg2"):
        actual = "psycopg 3" if is_psycopg3 else "psycopg2"
        raise ImproperlyConfigured(f"DRIVER={driver}, but Django's backend loaded {actual}")
