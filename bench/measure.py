#!/usr/bin/env python3
"""Runs one command and reports what it cost, as `metric<TAB>value` lines.

    measure.py --out FILE [--sample-sockets MS] [--pin-wal DB] -- COMMAND...

Reported after the command exits:
  wall_s        wall-clock seconds
  exit_code     the command's exit status (or -signal)
  maxrss_kib    peak resident set size (getrusage ru_maxrss: what /usr/bin/time %M prints)
  cpu_s         user + system CPU seconds
  wchar_bytes   bytes passed to write(2)-like calls (/proc/PID/io, read from the
                zombie before it is reaped): the WAL, checkpoints, logs
  max_sockets   with --sample-sockets: the most socket fds seen open at once,
                sampling /proc/PID/fd every MS milliseconds
  wal_bytes     with --pin-wal DB: bytes appended to DB's write-ahead log. A
                read transaction is held open on DB for the whole run, so no
                checkpoint can restart the log and its final size is exactly
                what was appended. Only meant for small writes (it stops
                checkpoints for the run).
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import time


def proc_io(pid):
    values = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                values[key.strip()] = int(value)
    except OSError:
        pass
    return values


def count_sockets(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass  # closed while we looked
    except OSError:
        pass
    return n


def wal_size(db):
    try:
        return os.path.getsize(db + "-wal")
    except OSError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="write the metrics here")
    ap.add_argument("--sample-sockets", type=float, default=0, metavar="MS")
    ap.add_argument("--pin-wal", metavar="DB")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")

    pin = None
    if args.pin_wal:
        pin = sqlite3.connect(args.pin_wal, isolation_level=None)
        pin.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # start from an empty log
        pin.execute("BEGIN")
        pin.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot is now held
        wal_before = wal_size(args.pin_wal)

    started = time.monotonic()
    child = subprocess.Popen(command)
    max_sockets = 0
    if args.sample_sockets > 0:
        period = args.sample_sockets / 1000
        while True:
            # WNOWAIT: leave the child a zombie, so /proc/PID/io stays readable below.
            info = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                break
            max_sockets = max(max_sockets, count_sockets(child.pid))
            time.sleep(period)
    else:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - started
    io = proc_io(child.pid)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)

    metrics = {
        "wall_s": f"{wall:.3f}",
        "exit_code": child.returncode,
        "maxrss_kib": usage.ru_maxrss,
        "cpu_s": f"{usage.ru_utime + usage.ru_stime:.3f}",
        "wchar_bytes": io.get("wchar", -1),
    }
    if args.sample_sockets > 0:
        metrics["max_sockets"] = max_sockets
    if pin is not None:
        wal_after = wal_size(args.pin_wal)
        # 32 bytes of log header, then frames (24-byte header + one page each).
        metrics["wal_bytes"] = max(0, wal_after - max(wal_before, 32)) if wal_after else 0
        pin.execute("ROLLBACK")
        pin.close()
    with open(args.out, "w") as f:
        for key, value in metrics.items():
            f.write(f"{key}\t{value}\n")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
