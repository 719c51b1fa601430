#!/usr/bin/env bash
# Scenario h (hot reload), notify-app only: figment and config-rs have no watching API.
# Runs `notify-app --watch N` in a scratch dir and edits service.yaml under it; writes
# results/notify-app/h_*.txt (the program's own output plus this script's log of edits).
set -u
cd "$(dirname "$0")"
ROOT=$PWD
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/notify-app
OUT=$ROOT/results/notify-app
mkdir -p "$OUT"
now() { local t=${EPOCHREALTIME/./}; echo "${t}000"; }  # no fork: bash 5 microsecond clock

# start SCENARIO FIXTURE SECONDS: fresh dir, start the watcher, wait for its "ok"
start() {
  DIR=$ROOT/scratch/notify-app/$1; rm -rf "$DIR"; mkdir -p "$DIR"; cp "fixtures/$2" "$DIR/service.yaml"
  LOG=$OUT/$1.txt; EDITS=$OUT/$1.edits.txt; : > "$EDITS"
  (cd "$DIR" && exec env -i PATH="$PATH" "$BIN" --watch "$3" > "$LOG" 2>&1) & PID=$!
  for _ in $(seq 50); do grep -q '^ok' "$LOG" 2>/dev/null && break; sleep 0.1; done
}
finish() { wait "$PID"; echo "exit=$?" >> "$LOG"; }
# edit LABEL: writes stdin over service.yaml in place (O_TRUNC then write, as `cat >` and many tools do)
edit() { local body; body=$(cat); echo "t=$(now) edit: $1" >> "$EDITS"; printf '%s\n' "$body" > "$DIR/service.yaml"; }
port() { sed "s/  port: 8080/  port: $1/" "$ROOT/fixtures/valid.yaml"; }

# h1: valid edit -> invalid edit -> fix
start h1_valid_invalid_fix valid.yaml 6
port 9090      | edit "port 9090 (valid)";     sleep 1
port '"eighty"'| edit 'port "eighty" (invalid)'; sleep 1
port 8081      | edit "port 8081 (fix)";       sleep 1
finish

# h2: latency, 10 in-place edits 700 ms apart, ports 10001..10010
start h2_latency valid.yaml 10
for i in $(seq 1 10); do port $((10000 + i)) | edit "port $((10000 + i))"; sleep 0.7; done
finish
{
  echo "# latency = first 'port=P applied' line time (stamped after the store) - edit time, per edit (ms)"
  for i in $(seq 1 10); do
    p=$((10000 + i))
    te=$(grep "edit: port $p\$" "$OUT/h2_latency.edits.txt" | sed 's/^t=\([0-9]*\).*/\1/')
    ta=$(grep -m1 "port=$p applied" "$OUT/h2_latency.txt" | sed 's/^t=\([0-9]*\).*/\1/')
    if [ -n "$ta" ]; then echo "port $p: $(( (ta - te) / 1000 )) us"; else echo "port $p: never applied"; fi
  done
} > "$OUT/h2_latency.summary.txt"
us=$(grep -o '[0-9]* us' "$OUT/h2_latency.summary.txt" | awk '{print $1}' | sort -n)
n=$(echo "$us" | grep -c .)
echo "median of $n: $(echo "$us" | awk -v n="$n" 'NR==int((n+1)/2){a=$1} NR==int(n/2)+1{b=$1} END{printf "%.3f ms\n", (a+b)/2000}')" >> "$OUT/h2_latency.summary.txt"
echo "rejected lines during the 10 valid edits: $(grep -c rejected "$OUT/h2_latency.txt")" >> "$OUT/h2_latency.summary.txt"

# h3: half-written file, split mid-file: write the first half, pause 100 ms, write the rest (one open file)
start h3_half_file_midsplit valid.yaml 3
body=$(port 12345); half=$(( ${#body} / 2 ))
echo "t=$(now) edit: first ${half} of ${#body} chars, 100 ms pause, rest (port 12345)" >> "$EDITS"
{ printf '%s' "${body:0:half}"; sleep 0.1; printf '%s\n' "${body:half}"; } > "$DIR/service.yaml"
sleep 1; finish

# h4: half-written file whose first half is itself a valid config: `port` is the last line and the
# split falls inside its value (8080 -> "80" then "80").
cat > "$ROOT/fixtures/port_last.yaml" <<'YAML'
features:
  dark_mode: true
  beta: false
db:
  url: postgres://localhost/app
  pool:
    min: 1
    max: 10
shutdown_timeout: { secs: 5, nanos: 0 }
log_level: info
server:
  host: 0.0.0.0
  workers: 4
  port: 9999
YAML
start h4_half_file_valid_prefix port_last.yaml 3
body=$(sed 's/port: 9999/port: 8080/' "$ROOT/fixtures/port_last.yaml"); cut=$(( ${#body} - 2 ))
echo "t=$(now) edit: all but the last 2 chars (ends 'port: 80'), 100 ms pause, then '80' (port 8080)" >> "$EDITS"
{ printf '%s' "${body:0:cut}"; sleep 0.1; printf '%s\n' "${body:cut}"; } > "$DIR/service.yaml"
sleep 1; finish

# h5: editor-style atomic save (write temp file, rename over service.yaml)
start h5_atomic_rename valid.yaml 3
port 7070 > "$DIR/.service.yaml.tmp"; echo "t=$(now) edit: rename .service.yaml.tmp (port 7070) over service.yaml" >> "$EDITS"
mv "$DIR/.service.yaml.tmp" "$DIR/service.yaml"; sleep 1; finish
