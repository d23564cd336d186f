#!/usr/bin/env python3
"""Turns scripts/bench.sh's raw results into the one table it prints.

    report.py RESULTS.tsv              the main table
    report.py --real-link RESULTS.tsv  the real-link table

RESULTS.tsv holds `key<TAB>value` lines; a key repeated once per run is
reduced to its median. Keys (N = incidents):
  machine.*                          free text about the machine
  parse.* / store.*                  incident-bench's medians
  e2e.N.{wall_s,maxrss_kib,cpu_s,sim_cpu_s,wchar_bytes}   incident-syncd once, fresh database
  steady.N.{wall_s,maxrss_kib,cpu_s,sim_cpu_s,rows,seen,wchar_bytes,wal_bytes}
  export.N.{wall_s,maxrss_kib,cpu_s}  incident-syncd export of the fresh database to /dev/null
  pg_e2e.N.* / pg_steady.N.{wall_s,maxrss_kib,cpu_s,sim_cpu_s,rows,seen}   the same two with database.url (PostgreSQL)
  pg_far.rtt_ms, pg_far_e2e.N.* / pg_far_steady.N.{wall_s,cpu_s}   the same through a latency proxy
  failover.{takeover_s,lease_ttl_s,victim_pairs,incidents_at_kill,incidents,expected,ahead}   3 daemons, one SIGKILLed
  peer.N.* / peer_reread.N.{wall_s,maxrss_kib,cpu_s,sim_cpu_s}
  idle.{seconds,cpu_s,rss_kib}       incident-syncd run, idling at interval 5m
  pairs1000.{incidents,wall_s,maxrss_kib,max_sockets,concurrency,ok}
  rl.C.{incidents,pairs}             the real link, case C (a: backfill of 10 pairs, b: one pair,
                                     c: a second `once` on a's database, d: churn)
  rl.C.{daemon,peer}.{wall_s,cpu_s,sim_cpu_s,stored,written}       one client's run
  rl.C.{daemon,peer}.{requests,status_429,not_ok,bytes_sent,body_bytes,peak_in_flight,refused_429,connections}
                                     the simulator's stats for that run
  rl.d.daemon.{slices_ok,slices_failed,error,lag_db_s,lag_metrics_s,exit_code}, rl.d.{seconds,interval,live}
"""

import statistics
import sys
from collections import defaultdict


def load(path):
    values = defaultdict(list)
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            if key:
                values[key].append(value)
    return values


class results:
    def __init__(self, raw):
        self.raw = raw

    def text(self, key, default=""):
        return self.raw[key][-1] if key in self.raw else default

    def num(self, key):
        if key not in self.raw:
            return None
        try:
            return statistics.median(float(v) for v in self.raw[key])
        except ValueError:
            return None

    def runs(self, key):
        return len(self.raw.get(key, []))


def rate(x):
    return "—" if x is None else f"{x:,.0f}"


def secs(x):
    if x is None:
        return "—"
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def mib(kib_or_bytes, from_bytes=False):
    if kib_or_bytes is None:
        return "—"
    return f"{kib_or_bytes / (1 << 20 if from_bytes else 1 << 10):.1f} MiB"


def ratio(a, b):
    return None if not a or not b else a / b


def count(x):
    return "—" if x is None else f"{x:,.0f}"


def size(n_bytes):
    if n_bytes is None:
        return "—"
    if n_bytes < 1 << 20:
        return f"{n_bytes / 1024:.1f} KiB"
    return f"{n_bytes / (1 << 20):.2f} MiB"


def table(header, rows):
    widths = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for x in rows:
        print(line(x))


def real_link(r):
    """One row per client and case: wall, the simulator's counts, and peer/daemon on the daemon's row."""
    rows = []

    def row(*cells):
        rows.append(tuple("—" if c is None or c == "" else str(c) for c in cells))

    labels = {"a": "real link (a): backfill, {pairs} pairs",
              "b": "real link (b): backfill, {pairs} pair",
              "c": "real link (c): steady state, second `once`, {pairs} pairs",
              "d": "real link (d): churn, `run` in live mode, {pairs} pairs"}
    for case in ("a", "b", "c", "d"):
        pairs = r.num(f"rl.{case}.pairs")
        incidents = r.num(f"rl.{case}.incidents")
        label = labels[case].format(pairs=count(pairs))
        for client in ("daemon", "peer"):
            p = f"rl.{case}.{client}"
            wall = r.num(p + ".wall_s")
            if wall is None:
                continue
            x = ratio(r.num(f"rl.{case}.peer.wall_s"), r.num(f"rl.{case}.daemon.wall_s"))
            notes = [f"stored {count(r.num(p + '.stored'))}"]
            if case == "c" and client == "daemon":
                notes.append(f"written {count(r.num(p + '.written'))}")
            if case == "d":
                notes = [f"slices ok {count(r.num(p + '.slices_ok'))} failed {count(r.num(p + '.slices_failed'))}",
                         f"max watermark lag {secs(r.num(p + '.lag_db_s'))} (sync_state), "
                         f"{secs(r.num(p + '.lag_metrics_s'))} (/metrics)",
                         f"written {count(r.num(p + '.written'))}",
                         f"interval {r.text('rl.d.interval')}, --live {r.text('rl.d.live')}",
                         f"exit {r.text(p + '.exit_code')}"]
                if r.text(p + ".error"):
                    notes.append(f"most common error: {r.text(p + '.error')}")
            else:
                notes.append(f"CPU {secs(r.num(p + '.cpu_s'))} (sim {secs(r.num(p + '.sim_cpu_s'))})")
            not_ok = r.num(p + ".not_ok")
            if not_ok and not_ok != r.num(p + ".status_429"):
                notes.append(f"non-200 {count(not_ok)}")
            notes.append(f"uncompressed {size(r.num(p + '.body_bytes'))}")
            notes.append(f"connections {count(r.num(p + '.connections'))}")
            row(label, client, count(incidents) if case != "d" else "", secs(wall), count(r.num(p + ".requests")),
                count(r.num(p + ".status_429")), size(r.num(p + ".bytes_sent")), count(r.num(p + ".peak_in_flight")),
                f"**{x:.2f}x**" if client == "daemon" and x else "", "; ".join(notes))
    table(("measurement", "client", "incidents", "wall", "requests", "429s", "bytes sent", "peak in flight",
           "peer/daemon", "notes"), rows)


def main():
    if sys.argv[1:2] == ["--real-link"]:
        real_link(results(load(sys.argv[2])))
        return
    r = results(load(sys.argv[1]))
    rows = []  # (what, incidents, incidents/s, wall, peak RSS, notes)

    def row(*cells):
        rows.append(tuple("—" if c is None or c == "" else str(c) for c in cells))

    def cpu(prefix):  # "CPU 1.2 s (sim 0.3 s)": the process measured, and the simulator serving it
        return f"CPU {secs(r.num(prefix + '.cpu_s'))} (sim {secs(r.num(prefix + '.sim_cpu_s'))})"

    def per_second(n, wall):
        return rate(n / wall if n and wall else None)

    n_parse = r.num("parse.incidents")
    if n_parse is not None:  # absent with --postgresql
        row("parse only (`api::parse_page`, pages of 100)", rate(n_parse), rate(r.num("parse.incidents_per_s")), "",
            "", f"{r.num('parse.mib_per_s') or 0:.0f} MiB/s of JSON")
        row("parse: RapidJSON DOM alone, same pages (the floor)", rate(n_parse),
            rate(r.num("parse.dom_incidents_per_s")), "", "", "no typed model, no raw spans")
        row("parse untyped: a re-read's cut into id, bytes and hash", rate(n_parse),
            rate(r.num("parse.untyped_incidents_per_s")), "", "", "what the event loop does per page of a re-read")
    n_store = r.num("store.incidents")
    for mode, label in (("fresh", "store only: fresh database"), ("unchanged", "store only: all unchanged"),
                        ("changed10", "store only: 10% changed")):
        p = f"store.{mode}."
        if r.num(p + "incidents_per_s") is None:
            continue
        row(label, rate(n_store), rate(r.num(p + "incidents_per_s")), secs(r.num(p + "seconds")), "",
            f"CPU {secs(r.num(p + 'cpu_seconds'))}, {secs(r.num(p + 'checkpoint_seconds'))} in checkpoints, "
            f"{rate(r.num(p + 'rows_written'))} rows, WAL {mib(r.num(p + 'wal_bytes'), True)}, "
            f"write(2) {mib(r.num(p + 'bytes_written'), True)}")

    sizes = sorted({int(k.split(".")[1]) for k in r.raw if k.startswith("e2e.")})
    for n in sizes:
        p = f"e2e.{n}"
        wall = r.num(p + ".wall_s")
        row("end to end: `incident-syncd once`, fresh", f"{n:,}", per_second(n, wall), secs(wall),
            mib(r.num(p + ".maxrss_kib")), f"{cpu(p)}, write(2) {mib(r.num(p + '.wchar_bytes'), True)}")
    for n in sizes:
        p = f"steady.{n}"
        wall = r.num(p + ".wall_s")
        if wall is None:
            continue
        row("steady state: `once` re-reading only unchanged incidents", f"{n:,}", per_second(r.num(p + ".seen"), wall),
            secs(wall), mib(r.num(p + ".maxrss_kib")),
            f"{cpu(p)}, incidents written {rate(r.num(p + '.rows'))}, WAL {mib(r.num(p + '.wal_bytes'), True)}, "
            f"write(2) {mib(r.num(p + '.wchar_bytes'), True)}")
    pg_sizes = sorted({int(k.split(".")[1]) for k in r.raw if k.startswith("pg_e2e.")})
    for n in pg_sizes:
        p = f"pg_e2e.{n}"
        wall = r.num(p + ".wall_s")
        row("PostgreSQL 15 (same machine, fsync on): `once`, fresh", f"{n:,}", per_second(n, wall), secs(wall),
            mib(r.num(p + ".maxrss_kib")), f"{cpu(p)} (target ≥ 10,000/s)")
        p = f"pg_steady.{n}"
        wall = r.num(p + ".wall_s")
        if wall is not None:
            row("PostgreSQL: `once` re-reading only unchanged incidents", f"{n:,}",
                per_second(r.num(p + ".seen"), wall), secs(wall), mib(r.num(p + ".maxrss_kib")),
                f"{cpu(p)}, incidents written {rate(r.num(p + '.rows'))} (target ≥ 50,000/s, 0 written)")
    for n in sorted({int(k.split(".")[1]) for k in r.raw if k.startswith("pg_far_e2e.")}):
        rtt = r.text("pg_far.rtt_ms")
        for p, what in ((f"pg_far_e2e.{n}", "fresh"), (f"pg_far_steady.{n}", "re-reading unchanged incidents")):
            wall = r.num(p + ".wall_s")
            if wall is not None:
                row(f"PostgreSQL {rtt} ms away (a latency proxy): `once`, {what}", f"{n:,}", per_second(n, wall),
                    secs(wall), "", f"{cpu(p)}; a fresh page costs 2 round trips to the database, a re-read 2")
    if r.num("failover.takeover_s") is not None:
        row("PostgreSQL failover: 3 daemons `run`, one killed with SIGKILL mid-backfill",
            f"{int(r.num('failover.expected')):,}", "", secs(r.num("failover.takeover_s")), "",
            f"its {r.text('failover.victim_pairs')} pair(s) resumed on another daemon "
            f"**{r.num('failover.takeover_s'):.1f} s** after the kill (lease_ttl {r.text('failover.lease_ttl_s')} s; "
            f"target: within it); at the end {r.text('failover.incidents')} of {r.text('failover.expected')} "
            f"incidents, {r.text('failover.ahead')} watermark(s) ahead of now")
    for n in sizes:
        p = f"export.{n}"
        wall = r.num(p + ".wall_s")
        if wall is None:
            continue
        row("export: `incident-syncd export` (JSON lines) to /dev/null", f"{n:,}", per_second(n, wall), secs(wall),
            mib(r.num(p + ".maxrss_kib")), f"CPU {secs(r.num(p + '.cpu_s'))}, one line per incident")
    peer_sizes = sorted({int(k.split(".")[1]) for k in r.raw if k.startswith("peer.")})
    for n in peer_sizes:
        for p, label, note in ((f"peer.{n}", "peer (`bench/peer_sync.py`): fresh", ""),
                               (f"peer_reread.{n}", "peer: re-read of unchanged data", ", rewrites every row")):
            wall = r.num(p + ".wall_s")
            row(label, f"{n:,}", per_second(n, wall), secs(wall), mib(r.num(p + ".maxrss_kib")), cpu(p) + note)
    for n in peer_sizes:
        for label, peer, daemon, target in (
                ("ratio daemon / peer: fresh backfill", "peer", "e2e", 6),
                ("ratio daemon / peer: re-read of unchanged data", "peer_reread", "steady", 20)):
            x = ratio(r.num(f"{peer}.{n}.wall_s"), r.num(f"{daemon}.{n}.wall_s"))
            goal = f" (target ≥ {target}x at 100k)" if n == 100_000 else ""
            row(label, f"{n:,}", "", "", "", f"**{x:.1f}x**{goal}" if x else None)
    if r.num("idle.cpu_s") is not None:
        row("idle: `incident-syncd run`, interval 5m, after a sync", "", "", secs(r.num("idle.seconds")),
            mib(r.num("idle.rss_kib")), f"**{r.num('idle.cpu_s'):.2f} CPU s** over {r.num('idle.seconds'):.0f} s")
    if r.num("pairs1000.wall_s") is not None:
        n = r.num("pairs1000.incidents")
        wall = r.num("pairs1000.wall_s")
        row(f"{r.text('pairs1000.pairs')} pairs in one process: one `once` pass", f"{n:,.0f}", per_second(n, wall),
            secs(wall), mib(r.num("pairs1000.maxrss_kib")),
            f"{cpu('pairs1000')}, max open sockets {r.text('pairs1000.max_sockets')} "
            f"(sync.concurrency {r.text('pairs1000.concurrency')}), {r.text('pairs1000.ok')}")

    table(("measurement", "incidents", "incidents/s", "wall", "peak RSS", "notes"), rows)


if __name__ == "__main__":
    main()
