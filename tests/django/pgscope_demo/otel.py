"""sqlcommenter comments exactly as opentelemetry's Django instrumentation writes them.

`DjangoInstrumentor().instrument(is_sql_commentor_enabled=True)` (the PyPI package
opentelemetry-instrumentation-django) puts two middlewares in front of settings.MIDDLEWARE:
its tracing middleware, which starts a server span per request, and `SqlCommenter`, which
wraps every statement of the request (a `connection.execute_wrapper`) and appends

    /*controller='<url name>',db_driver='django.db.backends.postgresql',
      framework='django%3A5.2.19',route='<url pattern>',traceparent='00-<trace>-<span>-03'*/

(keys sorted, values URL-encoded, and every `%` doubled because the SQL still goes through
the driver's `%s` formatting). The traceparent needs a recording span, so an SDK
TracerProvider is installed; it has no exporter, so spans go nowhere.
"""

import random

from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider


def instrument(deterministic_ids=False):
    """`deterministic_ids`: seed the generator the SDK's random trace and span ids come from,
    so that a recording has the same traceparents on every run (flags stay `03`: sampled,
    random trace id)."""
    if DjangoInstrumentor().is_instrumented_by_opentelemetry:
        return
    if deterministic_ids:
        random.seed(0x5EED)
    trace.set_tracer_provider(TracerProvider())
    DjangoInstrumentor().instrument(is_sql_commentor_enabled=True)
