#!/usr/bin/env python3
"""The peer: what a user would write instead of incident-syncd.

A plain afternoon's script with Debian's python3-requests and the standard
sqlite3 module, used by scripts/bench.sh as the baseline that incident-syncd
is measured against. For each (appId, tld) pair it keeps a watermark in
sync_state, reads the window behind it in max-window slices, GETs every page
with skip/take over one keep-alive session, and upserts each page in one
transaction into the same tables incident-syncd fills (created from
schema/001_initial.sql): incidents and scripts with INSERT ... ON CONFLICT,
their child rows replaced with DELETE + INSERT. WAL, synchronous=NORMAL.

It is deliberately neither slow nor clever: no content hashing to skip
unchanged rows, no threads, and one request at a time: pair after pair, slice
after slice, page after page, over one requests.Session() (keep-alive, and
requests' default `Accept-Encoding: gzip, deflate`, so a server that
compresses sends gzip). The one retry is what a plain script against a real
API ends up with: a 429 is honoured by sleeping its Retry-After (1 s when it
has none) and asking again, up to 30 times in a row. Any other error status
stops it.

    peer_sync.py --base-url https://127.0.0.1:PORT --token-file F --ca-file CA \\
                 --schema schema/001_initial.sql --db peer.db --pairs 10

Prints one `metric<TAB>value` line per result (incidents, pages, requests,
retries_429, seconds, accept_encoding).
"""

import argparse
import datetime
import email.utils
import hashlib
import json
import re
import sqlite3
import sys
import time

import requests

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 15m or 8d, got {text!r}")
    return int(m.group(1)) * UNITS_MS[m.group(2)]


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hash64(text):
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def upsert_script(db, s):
    key = s.get("key") or (s.get("id") and "id:" + s["id"])
    if not key:
        return None
    risk = s.get("risk") or {}
    row = (key, s.get("id"), s.get("app_id"), s.get("host_domain"), s.get("type"), s.get("vendor"),
           s.get("first_seen"), s.get("last_seen"), s.get("users_affected_percentage"),
           None if s.get("ack") is None else int(bool(s["ack"])), risk.get("level"), risk.get("reason"),
           hash64(json.dumps(s, sort_keys=True)))
    (script_key,) = db.execute(
        """INSERT INTO scripts (key, id, app_id, host_domain, type, vendor, first_seen, last_seen,
                                users_affected_percentage, ack, risk_level, risk_reason, content_hash)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
           ON CONFLICT(key) DO UPDATE SET id=excluded.id, app_id=excluded.app_id,
               host_domain=excluded.host_domain, type=excluded.type, vendor=excluded.vendor,
               first_seen=excluded.first_seen, last_seen=excluded.last_seen,
               users_affected_percentage=excluded.users_affected_percentage, ack=excluded.ack,
               risk_level=excluded.risk_level, risk_reason=excluded.risk_reason,
               content_hash=excluded.content_hash
           RETURNING script_key""", row).fetchone()
    db.execute("DELETE FROM script_page_types WHERE script_key = ?", (script_key,))
    db.executemany("INSERT OR IGNORE INTO script_page_types (script_key, page_type) VALUES (?, ?)",
                   [(script_key, p) for p in s.get("page_types") or []])
    return script_key


def upsert_incident(db, inc, now):
    raw = json.dumps(inc)
    script_key = upsert_script(db, inc["script"]) if inc.get("script") else None
    under_review = inc.get("under_review")
    row = (inc["id"], inc.get("app_id"), inc.get("host_domain"), inc.get("category"), inc.get("incident"),
           inc.get("details"), inc.get("initiator"), inc.get("first_seen"), inc.get("last_seen"),
           inc.get("ack_updated_at"), None if under_review is None else int(bool(under_review)),
           inc.get("risk_level"), script_key, raw, hash64(raw), hash64(raw), now, now, now)
    (key,) = db.execute(
        """INSERT INTO incidents (id, app_id, host_domain, category, incident, details, initiator, first_seen,
                                  last_seen, ack_updated_at, under_review, risk_level, script_key, raw_json,
                                  content_hash, substance_hash, first_synced_at, last_synced_at,
                                  content_changed_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
           ON CONFLICT(id) DO UPDATE SET app_id=excluded.app_id, host_domain=excluded.host_domain,
               category=excluded.category, incident=excluded.incident, details=excluded.details,
               initiator=excluded.initiator, first_seen=excluded.first_seen, last_seen=excluded.last_seen,
               ack_updated_at=excluded.ack_updated_at, under_review=excluded.under_review,
               risk_level=excluded.risk_level, script_key=excluded.script_key, raw_json=excluded.raw_json,
               content_hash=excluded.content_hash, substance_hash=excluded.substance_hash,
               last_synced_at=excluded.last_synced_at, content_changed_at=excluded.content_changed_at
           RETURNING incident_key""", row).fetchone()

    for table in ("incident_page_types", "action_args", "actions", "vulnerability_ids", "vulnerabilities"):
        db.execute(f"DELETE FROM {table} WHERE incident_key = ?", (key,))

    page_types = {p: (1, None) for p in inc.get("page_types") or []}
    for p, pct in (inc.get("page_types_per") or {}).items():
        page_types[p] = (int(p in page_types), pct if isinstance(pct, (int, float)) else None)
    db.executemany("INSERT INTO incident_page_types (incident_key, page_type, listed, percentage) VALUES (?,?,?,?)",
                   [(key, p, listed, pct) for p, (listed, pct) in page_types.items()])

    for n, a in enumerate(inc.get("actions") or []):
        db.execute("INSERT INTO actions (incident_key, ordinal, type, subtype, last_seen) VALUES (?,?,?,?,?)",
                   (key, n, a.get("type"), a.get("subtype"), a.get("last_seen")))
        db.executemany("INSERT OR REPLACE INTO action_args (incident_key, action_ordinal, name, value) "
                       "VALUES (?,?,?,?)",
                       [(key, n, k, v if isinstance(v, str) else json.dumps(v))
                        for k, v in (a.get("action_args") or {}).items()])

    vulnerabilities = (inc.get("additional_data") or {}).get("vulnerabilities") or []
    for n, v in enumerate(vulnerabilities):
        db.execute("INSERT INTO vulnerabilities (incident_key, ordinal, package, version) VALUES (?,?,?,?)",
                   (key, n, v.get("package"), v.get("version")))
        db.executemany("INSERT OR IGNORE INTO vulnerability_ids (incident_key, vulnerability_ordinal, "
                       "vulnerability_id) VALUES (?,?,?)", [(key, n, i) for i in v.get("ids") or []])


def retry_after_seconds(response):
    """The 429's Retry-After in seconds (delta-seconds or an HTTP date), 1 when absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return 1


def get_page(session, args, counters, params):
    """GET one page, sleeping through 429s as the server asks (30 in a row: give up)."""
    for _ in range(30):
        # verify= on the call, not session.verify: requests lets REQUESTS_CA_BUNDLE
        # override the session's setting.
        r = session.get(f"{args.base_url}/v1/incidents", timeout=30, verify=args.ca_file, params=params)
        counters["requests"] += 1
        if r.status_code != 429:
            r.raise_for_status()
            return r.json()
        counters["retries_429"] += 1
        time.sleep(retry_after_seconds(r))
    r.raise_for_status()


def sync_pair(session, db, args, counters, app_id, tld):
    row = db.execute("SELECT watermark_ms FROM sync_state WHERE app_id = ? AND tld = ?", (app_id, tld)).fetchone()
    now_ms = int(time.time() * 1000)
    start = row[0] - args.overlap if row and row[0] is not None else now_ms - args.initial_lookback
    incidents = pages = 0
    while start < now_ms:
        end = min(start + args.max_window, now_ms)
        skip = 0
        while True:
            body = get_page(session, args, counters, {"appId": app_id, "tld": tld, "from": start, "to": end,
                                                      "skip": skip, "take": args.page_size})
            data = body["data"]
            now = iso(int(time.time() * 1000))
            with db:  # one transaction per page
                for inc in data:
                    upsert_incident(db, inc, now)
            incidents += len(data)
            pages += 1
            skip += len(data)
            if not data or skip >= body["paging"]["count"]:
                break
        with db:
            db.execute("""INSERT INTO sync_state (app_id, tld, watermark_ms, watermark, last_success_at)
                          VALUES (?, ?, ?, ?, ?)
                          ON CONFLICT(app_id, tld) DO UPDATE SET watermark_ms = excluded.watermark_ms,
                              watermark = excluded.watermark, last_success_at = excluded.last_success_at""",
                       (app_id, tld, end, iso(end), iso(int(time.time() * 1000))))
        start = end
    return incidents, pages


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--ca-file", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--schema", required=True, help="schema/001_initial.sql, run when the database is new")
    ap.add_argument("--pairs", type=int, help="sync PXsim000/site000.example .. like incident-sim --pairs N")
    ap.add_argument("--pair", action="append", default=[], metavar="APP:TLD")
    ap.add_argument("--page-size", type=int, default=100,
                    help="`take` per request (default 100; incident-syncd's api.page_size defaults to 50)")
    ap.add_argument("--initial-lookback", type=duration_ms, default="24h")
    ap.add_argument("--overlap", type=duration_ms, default="15m")
    ap.add_argument("--max-window", type=duration_ms, default="6h")
    args = ap.parse_args()

    pairs = [tuple(p.split(":", 1)) for p in args.pair]
    pairs += [(f"PXsim{n:03d}", f"site{n:03d}.example") for n in range(args.pairs or 0)]
    if not pairs:
        ap.error("no pairs: give --pairs N or --pair APP:TLD")

    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'incidents'").fetchone()[0] == 0:
        with open(args.schema) as f:
            db.executescript(f.read())

    with open(args.token_file) as f:
        token = f.read().strip()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    # requests asks for compressed bodies by default ("gzip, deflate") and
    # decodes them; say so in the output, and make sure of it.
    if "gzip" not in session.headers.get("Accept-Encoding", ""):
        session.headers["Accept-Encoding"] = requests.utils.DEFAULT_ACCEPT_ENCODING
    counters = {"requests": 0, "retries_429": 0}

    started = time.monotonic()
    incidents = pages = 0
    for app_id, tld in pairs:
        n, p = sync_pair(session, db, args, counters, app_id, tld)
        incidents += n
        pages += p
    seconds = time.monotonic() - started
    db.close()
    print(f"incidents\t{incidents}\npages\t{pages}\nrequests\t{counters['requests']}\n"
          f"retries_429\t{counters['retries_429']}\nseconds\t{seconds:.3f}\n"
          f"accept_encoding\t{session.headers['Accept-Encoding']}")


if __name__ == "__main__":
    sys.exit(main())
