"""What the client scenarios of tests/relay_python.rs share.

Each scenario script takes a libpq DSN as its first argument (or in $PGSCOPE_DSN), runs the same
statements whether it is pointed at the server or at pgscope, and prints one JSON document of
what it saw: rows in a canonical text form (type-tagged, so that 1, 1.0, '1' and b'1' differ),
errors as SQLSTATEs. The Rust test compares the document from a direct connection with the one
through the proxy, so nothing here may depend on the connection (no pids, times of day, ports).
"""

import datetime
import decimal
import hashlib
import ipaddress
import json
import os
import sys
import uuid


def dsn():
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ["PGSCOPE_DSN"]


def dsn_params():
    """The DSN's `key=value` pairs as keyword arguments for asyncpg.connect."""
    params = dict(item.split("=", 1) for item in dsn().split())
    names = {"dbname": "database"}
    return {names.get(k, k): (int(v) if k == "port" else v) for k, v in params.items()}


def canon(v):
    """A JSON value that names the Python type the driver produced and its exact value."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return f"int:{v}"
    if isinstance(v, float):
        return f"float:{v!r}"
    if isinstance(v, decimal.Decimal):
        return f"numeric:{v}"
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) > 256:
            return f"bytes[{len(b)}]:sha256:{hashlib.sha256(b).hexdigest()}"
        return f"bytes:{b.hex()}"
    if isinstance(v, str):
        return f"str:{v}"
    if isinstance(v, datetime.datetime):
        return f"datetime:{v.isoformat()}"
    if isinstance(v, datetime.date):
        return f"date:{v.isoformat()}"
    if isinstance(v, datetime.time):
        return f"time:{v.isoformat()}"
    if isinstance(v, datetime.timedelta):
        return f"timedelta:{v.days}d{v.seconds}s{v.microseconds}us"
    if isinstance(v, uuid.UUID):
        return f"uuid:{v}"
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address,
                      ipaddress.IPv4Interface, ipaddress.IPv6Interface,
                      ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return f"{type(v).__name__}:{v}"
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {str(k): canon(x) for k, x in v.items()}
    # Driver-specific records (asyncpg.Record, psycopg2 DictRow, …) are sequences.
    if hasattr(v, "__iter__") and hasattr(v, "__len__") and not isinstance(v, (str, bytes)):
        try:
            return [canon(x) for x in v]
        except TypeError:
            pass
    return f"{type(v).__name__}:{v}"


def rows(rs):
    return [canon(list(r)) for r in rs]


def emit(doc):
    """Print the scenario's result as the last (and only) line of stdout."""
    sys.stdout.write(json.dumps(doc, sort_keys=True))
    sys.stdout.write("\n")
    sys.stdout.flush()
