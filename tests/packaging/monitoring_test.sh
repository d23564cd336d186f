#!/usr/bin/env bash
# contrib/ checked against a live daemon:
#   1. `promtool check rules` on contrib/prometheus/alerts.yml and `promtool
#      test rules` on its unit tests (each alert fires on its series, and not
#      on their healthy twins);
#   2. a live scrape of `incident-syncd run` (against incident-sim, with pair
#      discovery on) passes `promtool check metrics`;
#   3. every metric a dashboard panel or an alert names is a family in that
#      scrape, and the dashboard is well-formed (unique ids, a data source
#      and a query per target, panels inside the 24-column grid).
# Usage: monitoring_test.sh SOURCE_DIR DAEMON SIM
set -euo pipefail
src=$1 daemon=$2 sim=$3
command -v promtool >/dev/null || { echo "promtool missing: scripts/install-deps.sh monitoring"; exit 1; }

echo "== promtool check rules / test rules"
promtool check rules "$src/contrib/prometheus/alerts.yml"
(cd "$src/contrib/prometheus" && promtool test rules alerts_test.yml)

work=$(mktemp -d)
sim_pid=""; daemon_pid=""
cleanup() {
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null || true
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
umask 077; echo "monitoring-token" > "$work/token"; umask 022
"$sim" --port 0 --port-file "$work/port" --ca-out "$work/ca.pem" --incidents 2000 --pairs 3 --span 2h \
  --token-file "$work/token" > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do [[ -s $work/port ]] && break; sleep 0.1; done
cat > "$work/config.yaml" <<YAML
api: { base_url: "https://127.0.0.1:$(cat "$work/port")", token_file: token, ca_file: ca.pem }
sync: { interval: 1s, initial_lookback: 3h, settle: 0s, discover: true }
database: { path: incidents.db }
metrics: { listen: "127.0.0.1:0" }
YAML
"$daemon" run --config "$work/config.yaml" > "$work/daemon.log" 2>&1 &
daemon_pid=$!

echo "== a live scrape"
scrape() {
  python3 - "$1" <<'PY'
import re, sys, urllib.request
log = open(sys.argv[1]).read()
m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log)
if not m:
    sys.exit(1)
sys.stdout.write(urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/metrics", timeout=5).read().decode())
PY
}
# Wait until every discovered pair has succeeded once (its samples are there).
for _ in $(seq 1 600); do
  if scrape "$work/daemon.log" > "$work/metrics.txt" 2>/dev/null &&
     [[ $(grep -c '^incident_sync_pair_healthy{.*} 1$' "$work/metrics.txt") -eq 3 ]]; then
    break
  fi
  kill -0 "$daemon_pid" || { echo "the daemon died:"; cat "$work/daemon.log"; exit 1; }
  sleep 0.1
done
grep -c '^incident_sync_pair_healthy{.*} 1$' "$work/metrics.txt" | grep -qx 3 ||
  { echo "FAIL: the daemon never reported 3 healthy pairs"; cat "$work/daemon.log"; exit 1; }
promtool check metrics < "$work/metrics.txt"
echo "promtool check metrics: ok ($(grep -c '^# TYPE' "$work/metrics.txt") families)"

echo "== names in the dashboard and the alerts exist"
python3 - "$src/contrib/grafana/incident-sync.json" "$src/contrib/prometheus/alerts.yml" "$work/metrics.txt" <<'PY'
import json, re, sys
dashboard_path, alerts_path, metrics_path = sys.argv[1:4]
families = set(re.findall(r"^# TYPE (\S+) ", open(metrics_path).read(), re.M))
histograms = set(re.findall(r"^# TYPE (\S+) histogram", open(metrics_path).read(), re.M))
name = re.compile(r"\bincident_sync_[a-z0-9_]+")

def family(metric):
    for suffix in ("_bucket", "_sum", "_count"):
        if metric.endswith(suffix) and metric[: -len(suffix)] in histograms:
            return metric[: -len(suffix)]
    return metric

problems = []
dash = json.load(open(dashboard_path))
ids, used = set(), {}
for panel in dash["panels"]:
    where = f'panel {panel.get("id")} "{panel.get("title")}"'
    if panel.get("id") in ids:
        problems.append(f"{where}: id repeats")
    ids.add(panel.get("id"))
    g = panel.get("gridPos", {})
    if not all(k in g for k in "xywh") or g["x"] + g["w"] > 24:
        problems.append(f"{where}: gridPos {g} is not inside the 24-column grid")
    if panel.get("datasource", {}).get("uid") != "${datasource}":
        problems.append(f"{where}: its data source is not the dashboard's ${{datasource}} variable")
    if not panel.get("targets"):
        problems.append(f"{where}: no query")
    for t in panel.get("targets", []):
        if not t.get("expr"):
            problems.append(f"{where}: a target without expr")
        for m in name.findall(t.get("expr", "")):
            used.setdefault(family(m), where)
for m in name.findall(open(alerts_path).read()):
    used.setdefault(family(m), "alerts.yml")
for metric, where in sorted(used.items()):
    if metric not in families:
        problems.append(f"{where}: {metric} is not in a live scrape")
print(f"{len(used)} metric names used by {len(dash['panels'])} panels and the alerts; {len(families)} families scraped")
if problems:
    print("\n".join("FAIL: " + p for p in problems))
    sys.exit(1)
PY
echo "monitoring: ok"
