"""psycopg 3 LISTEN/NOTIFY: notifications from another session, delivered while the
listener waits (conn.notifies with a timeout) and while it runs a query.
"""

import psycopg

from _common import canon, dsn, emit

out = {}
with psycopg.connect(dsn(), autocommit=True) as listener, \
        psycopg.connect(dsn(), autocommit=True) as notifier:
    listener.execute("LISTEN pgscope_test")
    listener.execute('LISTEN "Other Channel"')
    notifier.execute("NOTIFY pgscope_test, 'first; payload'")
    notifier.execute("SELECT pg_notify(%s, %s)", ("Other Channel", "second"))
    with notifier.transaction():
        # Delivered at commit, in order, and only once per distinct payload.
        notifier.execute("NOTIFY pgscope_test, 'third'")
        notifier.execute("NOTIFY pgscope_test, 'third'")
        notifier.execute("NOTIFY pgscope_test, 'fourth'")
    got = []
    for n in listener.notifies(timeout=10, stop_after=4):
        got.append([n.channel, n.payload, n.pid == notifier.info.backend_pid])
    out["waited"] = got
    # Nothing more is pending: a short wait times out empty.
    out["then"] = [n.payload for n in listener.notifies(timeout=0.2)]
    # A notification that arrives while the listener is busy is delivered with its query's
    # results (psycopg queues it for the next notifies()).
    seen = []
    def handler(n):
        seen.append([n.channel, n.payload])

    listener.add_notify_handler(handler)
    notifier.execute("NOTIFY pgscope_test, 'during'")
    out["busy_query"] = canon(listener.execute("SELECT pg_sleep(0.05), 42").fetchone()[1])
    out["handler"] = seen
    listener.remove_notify_handler(handler)
    listener.execute("UNLISTEN *")
    notifier.execute("NOTIFY pgscope_test, 'unheard'")
    out["after_unlisten"] = [n.payload for n in listener.notifies(timeout=0.2)]
emit(out)
