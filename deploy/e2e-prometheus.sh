#!/usr/bin/env bash
# End-to-end check of the shipped HotconfPollFault alert against a real Prometheus: a release
# `hotconf run` on a copy of config/ is scraped every second; the config directory is renamed
# away for 2 minutes (the alert must go pending, then fire) and put back (it must clear; with
# max_over_time(...[2m]) in the expression that takes about 2 minutes). The rules are the shipped
# deploy/prometheus/hotconf-alerts.yaml with every `for:` shortened to 10s; the expressions are
# unchanged (checked). Takes about 5 minutes; not run by .ci/run.
#
# Needs: prometheus (Debian: prometheus), curl, python3, and a release build
# (cargo build --release -p hotconf-cli). Usage: deploy/e2e-prometheus.sh
# Env: HOTCONF (the binary, default target/release/hotconf), PROMETHEUS (default prometheus),
# AWAY_SECONDS (how long the directory stays away, default 120), KEEP_TMP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
hotconf=${HOTCONF:-$root/target/release/hotconf}
prometheus=${PROMETHEUS:-prometheus}
away_seconds=${AWAY_SECONDS:-120}
poll=2 # seconds between two looks at /api/v1/alerts
[ -x "$hotconf" ] || { echo "no hotconf binary at $hotconf (cargo build --release -p hotconf-cli)" >&2; exit 2; }
command -v "$prometheus" >/dev/null || { echo "no prometheus on PATH" >&2; exit 2; }

tmp=$(mktemp -d)
hc_pid=
prom_pid=
cleanup() {
  local rc=$?
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null || true
  [ -n "$hc_pid" ] && kill "$hc_pid" 2>/dev/null && wait "$hc_pid" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "--- hotconf log (tail)" >&2; tail -n 20 "$tmp/hotconf.log" >&2 2>/dev/null || true
    echo "--- prometheus log (tail)" >&2; tail -n 20 "$tmp/prometheus.log" >&2 2>/dev/null || true
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

hc_port=$(free_port)
prom_port=$(free_port)
prom="http://127.0.0.1:$prom_port"

# --- hotconf
cp -r config "$tmp/config"
"$hotconf" run --config "$tmp/config" --snapshots "$tmp/snapshots" \
  --admin-addr "127.0.0.1:$hc_port" --log-format json >"$tmp/hotconf.log" 2>&1 &
hc_pid=$!

# --- Prometheus: the shipped rules, every `for:` shortened, expressions untouched.
sed -E 's/^([[:space:]]*for:[[:space:]]*).*$/\110s/' deploy/prometheus/hotconf-alerts.yaml >"$tmp/hotconf-alerts.yaml"
if diff deploy/prometheus/hotconf-alerts.yaml "$tmp/hotconf-alerts.yaml" | grep -E '^[<>]' | grep -vE '^[<>][[:space:]]+for:' >/dev/null; then
  fail "the rules copy differs from the shipped rules in more than for:"
fi
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - hotconf-alerts.yaml
scrape_configs:
  - job_name: hotconf
    static_configs:
      - targets: ["127.0.0.1:$hc_port"]
EOF
"$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!

# query EXPR -> number of series in the instant vector (empty on error)
query_count() {
  curl -fsS --max-time 3 "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))' 2>/dev/null || true
}
# The HotconfPollFault alerts now, one line each: "state<TAB>activeAt<TAB>labels" (none: no line).
poll_fault_alerts() {
  curl -fsS --max-time 3 "$prom/api/v1/alerts" 2>/dev/null | python3 -c '
import json, sys
for a in json.load(sys.stdin)["data"]["alerts"]:
    if a["labels"].get("alertname") == "HotconfPollFault":
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        print(a["state"], a["activeAt"], labels, sep="\t")
'
}

echo "hotconf on 127.0.0.1:$hc_port (pid $hc_pid), prometheus on 127.0.0.1:$prom_port (pid $prom_pid)"
deadline=$((SECONDS + 60))
until [ "$(query_count 'up{job="hotconf"} == 1')" = 1 ] &&
      [ "$(query_count 'hotconf_faults{job="hotconf",kind="dir_missing"} == 0')" = 1 ]; do
  kill -0 "$hc_pid" 2>/dev/null || fail "hotconf exited"
  kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
  [ "$SECONDS" -lt "$deadline" ] || fail "the target was not up with hotconf_faults within 60 s"
  sleep 1
done
# Let the rule group evaluate a few times over the scraped series: nothing pending before.
sleep 5
[ -z "$(poll_fault_alerts)" ] || fail "HotconfPollFault is active before the directory is removed: $(poll_fault_alerts)"
echo "target up, HotconfPollFault inactive"

# --- The directory goes away.
mv "$tmp/config" "$tmp/config.away"
t_removed=$(now)
echo "$(date -u +%T) config directory renamed away for ${away_seconds}s"
pending_at= firing_at= labels= active_at=
deadline=$((SECONDS + away_seconds))
while [ "$SECONDS" -lt "$deadline" ]; do
  line=$(poll_fault_alerts | head -n 1)
  if [ -n "$line" ]; then
    IFS=$'\t' read -r state active_at labels <<<"$line"
    if [ -z "$pending_at" ]; then pending_at=$(since "$t_removed"); echo "  +${pending_at}s $state (activeAt $active_at)"; fi
    if [ "$state" = firing ] && [ -z "$firing_at" ]; then firing_at=$(since "$t_removed"); echo "  +${firing_at}s firing"; fi
  fi
  sleep "$poll"
done
state_at_return=$(poll_fault_alerts | head -n 1 | cut -f1)
[ -n "$firing_at" ] || fail "HotconfPollFault did not fire within ${away_seconds}s of the directory going away (pending: ${pending_at:-never})"
[ "$state_at_return" = firing ] || fail "HotconfPollFault was '${state_at_return:-inactive}', not firing, when the directory came back"

# --- The directory comes back.
mv "$tmp/config.away" "$tmp/config"
t_returned=$(now)
echo "$(date -u +%T) config directory back"
cleared_at=
deadline=$((SECONDS + 240))
while [ "$SECONDS" -lt "$deadline" ]; do
  if [ -z "$(poll_fault_alerts)" ]; then cleared_at=$(since "$t_returned"); break; fi
  sleep "$poll"
done
[ -n "$cleared_at" ] || fail "HotconfPollFault did not clear within 240 s of the directory coming back"
echo "  +${cleared_at}s cleared"
curl -fsS --max-time 3 "http://127.0.0.1:$hc_port/healthz" | sed 's/^/  healthz after: /'

echo
echo "== timeline (polled every ${poll}s; rules: shipped expressions, for: 10s; scrape and evaluation every 1s)"
echo "since removal: pending +${pending_at}s, firing +${firing_at}s (still firing at return, +${away_seconds}s)"
echo "since return:  cleared +${cleared_at}s"
echo "labels: $labels"
echo "PASS"
