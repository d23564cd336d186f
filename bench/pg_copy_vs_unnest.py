#!/usr/bin/python3
"""Server-side cost of the incidents' own upsert, PostgreSQL: unnest() of array
parameters in a prepared statement (what the daemon does) against COPY into a
temporary table + one INSERT ... SELECT ... ON CONFLICT (then TRUNCATE of the
stage; a DELETE leaves dead rows that slow every later page by 10-60x), on
real rows taken from a database the daemon filled, pages of 100,
transactions of 5,000 (the writer's), a fresh table each run, interleaved.
Payloads are built before timing: only the server's work (and the socket on
loopback) is timed.

    bench/pg_copy_vs_unnest.py SOURCE_DSN TARGET_DSN [ROUNDS]

SOURCE_DSN: a database `incident-syncd once` filled (its incidents are the
rows); TARGET_DSN: an empty database holding the same `incidents` table
(`pg_dump -s -t incidents SOURCE | psql TARGET`), which this truncates.
Needs psycopg 3 (Debian: python3-psycopg), which binds parameters
server-side as libpq's PQexecPrepared does."""
import io
import sys
import time

import psycopg

SRC, DST = sys.argv[1], sys.argv[2]
COLS = ["incident_key", "id", "app_id", "host_domain", "category", "incident", "details", "initiator",
        "first_seen", "last_seen", "ack_updated_at", "under_review", "risk_level", "script_key", "raw_json",
        "content_hash", "substance_hash", "script_risk_level"]
TYPES = ["bigint", "text", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz",
         "timestamptz", "smallint", "text", "bigint", "text", "bigint", "bigint", "text"]
PAGE, TX = 100, 5000

src = psycopg.connect(SRC)
cur = src.cursor()
cur.execute("SELECT " + ", ".join(f"{c}::text" for c in COLS) + " FROM incidents ORDER BY incident_key")
rows = cur.fetchall()
src.close()
print(f"{len(rows)} rows", flush=True)


def array_literal(values):
    out = []
    for v in values:
        if v is None:
            out.append("NULL")
        else:
            out.append('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(out) + "}"


def copy_text(row):
    def esc(v):
        if v is None:
            return "\\N"
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return "\t".join(esc(v) for v in row) + "\n"


pages = [rows[i:i + PAGE] for i in range(0, len(rows), PAGE)]
unnest_payloads = [[array_literal([r[c] for r in p]) for c in range(len(COLS))] for p in pages]
copy_payloads = ["".join(copy_text(r) for r in p) for p in pages]

UPDATE = ("ON CONFLICT (id) DO UPDATE SET app_id = EXCLUDED.app_id, host_domain = EXCLUDED.host_domain, "
          "category = EXCLUDED.category, incident = EXCLUDED.incident, details = EXCLUDED.details, "
          "initiator = EXCLUDED.initiator, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, "
          "ack_updated_at = EXCLUDED.ack_updated_at, under_review = EXCLUDED.under_review, "
          "risk_level = EXCLUDED.risk_level, script_key = EXCLUDED.script_key, raw_json = EXCLUDED.raw_json, "
          "content_hash = EXCLUDED.content_hash, substance_hash = EXCLUDED.substance_hash, "
          "script_risk_level = EXCLUDED.script_risk_level, last_synced_at = EXCLUDED.last_synced_at")
TAIL = ", first_synced_at, last_synced_at, content_changed_at"
UNNEST_SQL = ("INSERT INTO incidents (" + ", ".join(COLS) + TAIL + ") SELECT u.*, now(), now(), now() FROM unnest(" +
              ", ".join(f"%s::{t}[]" for t in TYPES) + ") AS u " + UPDATE)
FROM_STAGE = ("INSERT INTO incidents (" + ", ".join(COLS) + TAIL + ") SELECT " + ", ".join(COLS) +
              ", now(), now(), now() FROM incidents_stage " + UPDATE)

dst = psycopg.connect(DST)
dst.autocommit = False
d = dst.cursor()


def fresh():
    d.execute("TRUNCATE incidents")
    dst.commit()
    dst.commit()
    dst.autocommit = True
    d.execute("CHECKPOINT")
    dst.autocommit = False


def run_unnest():
    fresh()
    t0 = time.perf_counter()
    for i, payload in enumerate(unnest_payloads):
        d.execute(UNNEST_SQL, payload, prepare=True)
        if (i + 1) % (TX // PAGE) == 0:
            dst.commit()
    dst.commit()
    return time.perf_counter() - t0


def run_copy():
    fresh()
    d.execute("CREATE TEMP TABLE IF NOT EXISTS incidents_stage AS SELECT " + ", ".join(COLS) +
              " FROM incidents WITH NO DATA")
    dst.commit()
    t0 = time.perf_counter()
    for i, payload in enumerate(copy_payloads):
        with d.copy("COPY incidents_stage (" + ", ".join(COLS) + ") FROM STDIN") as cp:
            cp.write(payload)
        d.execute(FROM_STAGE, prepare=True)
        d.execute("TRUNCATE incidents_stage")
        if (i + 1) % (TX // PAGE) == 0:
            dst.commit()
    dst.commit()
    return time.perf_counter() - t0


results = {"unnest": [], "copy": []}
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 2):
    results["unnest"].append(run_unnest())
    print(f"unnest {results['unnest'][-1]:.2f} s", flush=True)
    results["copy"].append(run_copy())
    print(f"copy   {results['copy'][-1]:.2f} s", flush=True)
for k, v in results.items():
    print(k, " ".join(f"{x:.2f}" for x in v))
