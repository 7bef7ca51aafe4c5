#!/usr/bin/env python
"""Run the demo views through pgscope and check what it reports.

    drive.py --port PROXY_PORT --http-port HTTP_PORT [--out run.json] [--n1-threshold 5]
             [--idle-gap 0.25] [--only NAME,...] [--no-check]

The database must be migrated and seeded (`manage.py migrate && manage.py seed`, best
directly against PostgreSQL). The settings come from the environment as for manage.py
(DRIVER, SQLCOMMENTER, CONN_MAX_AGE, PGUSER, PGDATABASE, PGPASSWORD, ...); PGHOST/PGPORT are
replaced by 127.0.0.1 and --port.

1. Runs every scenario of scenarios.py in order, one `client.get` per request (closing the
   connection at the end of each request as a WSGI server does when CONN_MAX_AGE=0),
   logging the statements each request sent.
2. Writes --out: the run's settings, and per scenario its requests, statement counts and the
   findings it must cause (kind, child and parent table, orm, model, field, burst) or none.
3. Checks GET /api/queries: every N+1 child and parent statement was counted as often as the
   views sent it (and, once pgscope normalizes literals, under one fingerprint).
4. Checks GET /api/nplusone: each expected finding is there once with the right kind,
   suggestion, parent query and counts (and route, with sqlcommenter), and there is no other
   finding: nothing for the fixed views and the look-alikes.
5. Checks GET /metrics: pgscope_nplusone_bursts_total, pgscope_nplusone_queries_total and
   pgscope_duplicate_queries_total agree with the findings, and there are no other series.

Prints a table of expected against actual and exits 1 if anything differs.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import scenarios as sc  # noqa: E402
from pgscope_demo import recording  # noqa: E402

# How long to wait for pgscope's asynchronous analysis to catch up.
SETTLE_SECONDS = 15.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="pgscope's --listen port")
    p.add_argument("--http-port", type=int, required=True, help="pgscope's --http-listen port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--out", help="write the run and its expected findings here (JSON)")
    p.add_argument("--n1-threshold", type=int, default=sc.N1_THRESHOLD, help="pgscope's --n1-threshold")
    p.add_argument(
        "--idle-gap",
        type=float,
        default=0.6,
        help="seconds to wait after a request whose connection stays open (default 0.6: more "
        "than pgscope's 500 ms idle gap, its request boundary when nothing else tells)",
    )
    p.add_argument("--only", help="comma-separated scenario names (default: all)")
    p.add_argument("--no-check", action="store_true", help="run the views and write --out, check nothing")
    return p.parse_args()


# --- running the views ---


def run_scenarios(args, settings):
    from django.urls import resolve

    selected = sc.SCENARIOS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - set(sc.scenario_names())
        if unknown:
            sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")
        selected = [s for s in sc.SCENARIOS if s["name"] in names]
    check_threshold(args.n1_threshold)

    client = recording.Requests(idle_gap=args.idle_gap)
    recording.Statements.log = None
    ran = []
    for s in selected:
        client.persistent = s["persistent"]
        requests = []
        for path in s["paths"]:
            log = recording.Statements.log = []
            response = client.get(path)
            recording.Statements.log = None
            if response.status_code != 200:
                sys.exit(f"{s['name']}: GET {path} answered {response.status_code}:\n{response.content[:2000]!r}")
            requests.append(
                {
                    "path": path,
                    "route": resolve(path).route,
                    "statements": [recording.split_comment(e["sql"])[0] for e in log],
                    "comment": next((recording.split_comment(e["sql"])[1] for e in log), None),
                }
            )
        client.persistent = False
        ran.append({**s, "requests": requests})
    client.close()
    return ran


def check_threshold(threshold):
    """The scenarios' expectations hold for this threshold only if every N+1 burst reaches it
    and the below-threshold look-alikes stay under it."""
    for s in sc.SCENARIOS:
        for e in s["expected"]:
            if e["kind"] == "n_plus_one" and e["burst"] < threshold:
                sys.exit(f"--n1-threshold {threshold}: {s['name']}'s burst of {e['burst']} would not be reported")
    if threshold <= 4:
        sys.exit(f"--n1-threshold {threshold}: nplusone_below_threshold (4 lookups) would be an N+1")


# --- talking to pgscope ---


def http_get(args, path):
    url = f"http://{args.host}:{args.http_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def get_json(args, path):
    status, body = http_get(args, path)
    if status != 200:
        return None, f"GET {path} answered {status}: {body[:300]}"
    try:
        return json.loads(body), None
    except ValueError as e:
        return None, f"GET {path} is not JSON ({e}): {body[:300]}"


def matches(text, parts):
    return text is not None and all(p in text for p in parts)


def require_fresh(args):
    """The checks compare absolute counts: pgscope must not have seen the demo's tables yet
    (migrate and seed directly against PostgreSQL, not through it)."""
    data, error = get_json(args, "/api/queries")
    if error:
        sys.exit(f"pgscope's HTTP port {args.http_port}: {error}")
    seen = [q.get("query") for q in data.get("queries", []) if '"library_' in (q.get("query") or "")]
    if seen:
        sys.exit(
            f"pgscope has already seen {len(seen)} statement(s) on the demo tables, e.g. {seen[0][:120]!r}:\n"
            "start a new pgscope (and migrate/seed directly against PostgreSQL), or use --no-check"
        )


# --- checks ---


class Report:
    def __init__(self):
        self.failures = []

    def fail(self, text):
        self.failures.append(text)

    def section(self, title):
        print(f"\n== {title}")


def tracked_statements(ran):
    """Each distinct child and parent statement of the expected findings (as its `match`
    substrings), labelled, with how many times the views sent it (counted from the
    statements they logged, in every scenario: the N+1 child lookups also run elsewhere)."""
    tracked = {}
    for s in sc.SCENARIOS:
        for e in s["expected"]:
            tracked.setdefault(tuple(e["match"]), f"{s['name']}: {e['child_table']} ({e['kind']})")
            if e["parent_match"]:
                tracked.setdefault(tuple(e["parent_match"]), f"{s['name']}: parent {e['parent_table']}")
    counts = {}
    for parts, label in tracked.items():
        sent = [sql for r in ran for req in r["requests"] for sql in req["statements"] if matches(sql, parts)]
        counts[parts] = (label, len(sent), len({shape(sql) for sql in sent}))
    return counts


def check_queries(args, ran, report):
    report.section("GET /api/queries: N+1 child and parent statements, calls as sent")
    counts = tracked_statements(ran)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        data, error = get_json(args, "/api/queries")
        if error:
            report.fail(error)
            print(f"  {error}")
            return
        queries = data.get("queries", [])
        got = {
            parts: [q for q in queries if matches(q.get("query"), parts)] for parts in counts
        }
        done = all(sum(q.get("calls", 0) for q in got[p]) >= n for p, (_, n, _) in counts.items())
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Without normalization the same statement with other literals is another fingerprint.
    normalized = not any("LIMIT 21" in (q.get("query") or "") for q in queries)
    print(f"  {'statement':<56} {'sent':>5} {'calls':>6} {'shapes':>7} {'fingerprints':>13}")
    for parts, (label, n, shapes) in counts.items():
        calls = sum(q.get("calls", 0) for q in got[parts])
        fps = len(got[parts])
        ok = calls == n and (fps == shapes or not normalized)
        print(f"  {label:<56} {n:>5} {calls:>6} {shapes:>7} {fps:>13}  {'ok' if ok else 'DIFFERENT'}")
        if calls != n:
            report.fail(f"/api/queries: {label} {parts}: {calls} calls, the views sent {n}")
        elif normalized and fps != shapes:
            report.fail(f"/api/queries: {label} {parts}: {fps} fingerprints for {shapes} statement shape(s)")
    if not normalized:
        print("  (pgscope does not normalize literals yet: one fingerprint per literal; calls summed,")
        print("   fingerprints not compared with the statement shapes the views sent)")


def expected_findings(ran, sqlcommenter):
    out = []
    for r in ran:
        for e in r["expected"]:
            out.append({**e, "scenario": r["name"], "route": r["route"] if sqlcommenter else None})
    return out


def describe_expected(e):
    if e["kind"] == "duplicate":
        return f"duplicate {e['child_table']} x{e['burst']} -> cache"
    return (
        f"n_plus_one {e['child_table']} <- {e['parent_table']} x{e['burst']} -> "
        f"{e['orm']}({e['model']}.{e['field']})"
    )


def describe_actual(f):
    s = f.get("suggestion") or {}
    return (
        f"{f.get('kind')} x{f.get('max_burst')} bursts={f.get('bursts')} queries={f.get('queries')} -> "
        f"{s.get('orm')}({s.get('model')}.{s.get('field')}) route={f.get('route')!r}"
    )


def compare(e, f, sqlcommenter):
    """The differences between expected finding `e` and actual finding `f`, as text lines."""
    diffs = []
    s = f.get("suggestion") or {}

    def want(field, expected, actual):
        if expected != actual:
            diffs.append(f"{field}: expected {expected!r}, got {actual!r}")

    want("kind", e["kind"], f.get("kind"))
    want("suggestion.orm", e["orm"], s.get("orm"))
    want("suggestion.model", e["model"], s.get("model"))
    if e["kind"] == "n_plus_one":
        want("suggestion.field", e["field"], s.get("field"))
        if not matches(f.get("parent_query"), e["parent_match"]):
            diffs.append(f"parent_query: expected one containing {e['parent_match']}, got {f.get('parent_query')!r}")
        if not re.fullmatch(r"[0-9a-f]{16}", str(f.get("parent_fingerprint"))):
            diffs.append(f"parent_fingerprint: expected 16 hex digits, got {f.get('parent_fingerprint')!r}")
    want("max_burst", e["burst"], f.get("max_burst"))
    want("bursts", e["bursts"], f.get("bursts"))
    want("queries", e["queries"], f.get("queries"))
    if not re.fullmatch(r"[0-9a-f]{16}", str(f.get("fingerprint"))):
        diffs.append(f"fingerprint: expected 16 hex digits, got {f.get('fingerprint')!r}")
    wasted = f.get("wasted_seconds")
    if not isinstance(wasted, (int, float)) or wasted <= 0:
        diffs.append(f"wasted_seconds: expected > 0, got {wasted!r}")
    if sqlcommenter:
        want("route", e["route"], f.get("route"))
    elif f.get("route") not in (None, ""):
        diffs.append(f"route: expected none without sqlcommenter, got {f.get('route')!r}")
    if not isinstance(s.get("text"), str) or not s.get("text"):
        diffs.append(f"suggestion.text: expected a sentence, got {s.get('text')!r}")
    for stamp in ("first_seen", "last_seen"):
        if not f.get(stamp):
            diffs.append(f"{stamp}: missing")
    return diffs


def candidates(e, findings, sqlcommenter):
    return [
        i
        for i, f in enumerate(findings)
        if f.get("kind") == e["kind"]
        and matches(f.get("query"), e["match"])
        and (not sqlcommenter or f.get("route") == e["route"])
    ]


def shape(sql):
    """A statement with comments, literals and placeholders blanked: enough to tell which
    view sent the statement of a finding, whatever pgscope's normalization looks like."""
    sql = recording.split_comment(sql or "")[0]
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\$\d+|%s|\b\d+\b", "?", sql)
    sql = re.sub(r"\?(?:\s*,\s*\?)+", "?", sql)
    return " ".join(sql.split()).upper()


def blame(f, ran, sqlcommenter):
    """Which scenarios an unexpected finding most likely came from."""
    if sqlcommenter and f.get("route"):
        names = [r["name"] for r in ran if any(q["route"] == f["route"] for q in r["requests"])]
        if names:
            return names
    def sent_by(same):
        return [r["name"] for r in ran if any(same(sql) for q in r["requests"] for sql in q["statements"])]

    wanted = shape(f.get("query"))
    names = sent_by(lambda sql: shape(sql) == wanted)
    if not names:  # the same table and filter column at least
        m = re.search(r'FROM "\w+"(?: INNER JOIN "\w+" ON \(.*?\))? WHERE "\w+"\."\w+" ', f.get("query") or "")
        names = sent_by(lambda sql: m.group(0) in sql) if m else []
    return names or ["?"]


def check_findings(args, ran, sqlcommenter, report):
    report.section("GET /api/nplusone: expected findings against actual")
    expected = expected_findings(ran, sqlcommenter)
    # Analysis is asynchronous: wait until every expected finding is there and two reads in a
    # row agree (so that a late unexpected one is not missed).
    deadline = time.monotonic() + SETTLE_SECONDS
    previous = None
    while True:
        data, error = get_json(args, "/api/nplusone")
        findings = (data or {}).get("findings", [])
        if error:
            break
        complete = all(candidates(e, findings, sqlcommenter) for e in expected)
        if complete and data == previous:
            break
        if time.monotonic() > deadline:
            break
        previous = data
        time.sleep(0.3)
    if error:
        report.fail(error)
        print(f"  {error}")
        print("  expected findings:")
        for e in expected:
            print(f"    {e['scenario']:<28} {describe_expected(e)}")
        return []

    claimed = set()
    matched = []
    rows = []  # (scenario, expected text, result, detail lines)
    for e in expected:
        idx = [i for i in candidates(e, findings, sqlcommenter) if i not in claimed]
        if not idx:
            rows.append((e["scenario"], describe_expected(e), "MISSING", []))
            report.fail(f"{e['scenario']}: no {e['kind']} finding for {e['child_table']} ({e['match']})")
            continue
        # Several candidates (the same child statement reported more than once): the closest
        # one is this scenario's, the others are unexpected.
        best = min(idx, key=lambda i: len(compare(e, findings[i], sqlcommenter)))
        claimed.add(best)
        f = findings[best]
        matched.append((e, f))
        diffs = compare(e, f, sqlcommenter)
        rows.append((e["scenario"], describe_expected(e), "DIFFERENT" if diffs else "ok", diffs))
        for d in diffs:
            report.fail(f"{e['scenario']}: {d}")

    unexpected = {}
    for i, f in enumerate(findings):
        if i in claimed:
            continue
        who = blame(f, ran, sqlcommenter)
        for name in who:
            unexpected.setdefault(name, []).append(f)
        report.fail(f"unexpected finding (from {', '.join(who)}): {f.get('kind')} {f.get('query')}")

    print(f"  {'scenario':<28} {'expected':<70} result")
    for r in ran:
        mine = [row for row in rows if row[0] == r["name"]]
        if not mine:
            mine = [(r["name"], "(nothing)", "ok" if r["name"] not in unexpected else "REPORTED", [])]
        for name, text, result, details in mine:
            print(f"  {name:<28} {text:<70} {result}")
            for d in details:
                print(f"      {d}")
        for f in unexpected.get(r["name"], []):
            print(f"      unexpected: {describe_actual(f)}")
            print(f"        query:  {f.get('query')}")
            print(f"        parent: {f.get('parent_query')}")
    for f in unexpected.get("?", []):
        print(f"  {'?':<28} unexpected: {describe_actual(f)}\n        query:  {f.get('query')}")
    return matched


METRIC_LINE = re.compile(r"^(\w+)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    series = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        if m:
            labels = dict(LABEL.findall(m.group(2) or ""))
            series.append((m.group(1), labels, float(m.group(3))))
    return series


def series_text(name, labels):
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def check_metrics(args, matched, report):
    report.section("GET /metrics: N+1 and duplicate counters")
    status, text = http_get(args, "/metrics")
    if status != 200:
        report.fail(f"GET /metrics answered {status}")
        print(f"  GET /metrics answered {status}")
        return
    series = parse_metrics(text)

    def value(name, **labels):
        found = [v for n, l, v in series if n == name and all(l.get(k) == x for k, x in labels.items())]
        return found[0] if len(found) == 1 else (None if not found else found)

    wanted = []  # (metric, labels, expected value)
    for e, f in matched:
        fp = f.get("fingerprint")
        if e["kind"] == "n_plus_one":
            wanted.append(("pgscope_nplusone_bursts_total", {"fingerprint": fp, "parent": f.get("parent_fingerprint")}, e["bursts"]))
            wanted.append(("pgscope_nplusone_queries_total", {"fingerprint": fp}, e["queries"]))
        else:
            wanted.append(("pgscope_duplicate_queries_total", {"fingerprint": fp}, e["queries"]))
    for name, labels, n in wanted:
        got = value(name, **labels)
        ok = got == n
        print(f"  {series_text(name, labels)} expected {n}, got {got}  {'ok' if ok else 'DIFFERENT'}")
        if not ok:
            report.fail(f"/metrics: {series_text(name, labels)}: expected {n}, got {got}")
    for name in ("pgscope_nplusone_bursts_total", "pgscope_nplusone_queries_total", "pgscope_duplicate_queries_total"):
        keys = {tuple(sorted(l.items())) for m, l, _ in wanted if m == name}
        extra = [(l, v) for n, l, v in series if n == name and tuple(sorted(l.items())) not in keys and v != 0]
        for labels, v in extra:
            print(f"  unexpected series {series_text(name, labels)} = {v}")
            report.fail(f"/metrics: unexpected {series_text(name, labels)} = {v}")
        if not any(n == name for n, _, _ in series) and keys:
            print(f"  {name}: no series at all")


def main():
    args = parse_args()
    settings = recording.setup(host=args.host, port=args.port)
    sqlcommenter = settings.SQLCOMMENTER
    print(
        f"driver={settings.DRIVER} sqlcommenter={'on' if sqlcommenter else 'off'} "
        f"CONN_MAX_AGE={settings.DATABASES['default']['CONN_MAX_AGE']} "
        f"n1_threshold={args.n1_threshold} idle_gap={args.idle_gap}s proxy=127.0.0.1:{args.port}"
    )
    if not args.no_check:
        require_fresh(args)
    started = time.monotonic()
    ran = run_scenarios(args, settings)
    print(f"ran {len(ran)} scenarios, {sum(len(r['requests']) for r in ran)} requests in {time.monotonic() - started:.1f} s")
    for r in ran:
        n = sum(len(q["statements"]) for q in r["requests"])
        print(f"  {r['name']:<28} {len(r['requests']):>2} request(s) {n:>3} statements  {r['about']}")
    if sqlcommenter:
        print(f"  a comment as sent: {ran[0]['requests'][0]['comment']}")

    if args.out:
        run = {
            "driver": settings.DRIVER,
            "sqlcommenter": sqlcommenter,
            "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
            "n1_threshold": args.n1_threshold,
            "idle_gap_seconds": args.idle_gap,
            "scenarios": [
                {
                    "name": r["name"],
                    "about": r["about"],
                    "persistent_connection": r["persistent"],
                    "requests": [
                        {"path": q["path"], "route": q["route"], "statements": len(q["statements"])}
                        for q in r["requests"]
                    ],
                    "expected": [
                        {k: e[k] for k in ("kind", "child_table", "parent_table", "orm", "model", "field", "burst", "bursts", "queries", "match", "parent_match")}
                        | {"route": r["route"] if sqlcommenter else None}
                        for e in r["expected"]
                    ]
                    or "none",
                }
                for r in ran
            ],
        }
        with open(args.out, "w") as f:
            json.dump(run, f, indent=1)
        print(f"wrote {args.out}")
    if args.no_check:
        return 0

    report = Report()
    check_queries(args, ran, report)
    matched = check_findings(args, ran, sqlcommenter, report)
    check_metrics(args, matched, report)
    print()
    if report.failures:
        print(f"FAILED: {len(report.failures)} difference(s)")
        for f in report.failures:
            print(f"  - {f}")
        return 1
    print("all findings as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
