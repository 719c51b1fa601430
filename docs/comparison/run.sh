#!/usr/bin/env bash
# Builds the three comparison programs (one at a time) and runs every scenario against each,
# capturing the exact output (stdout+stderr, then the exit code) in results/<tool>/<scenario>.txt.
# Usage: ./run.sh            (static scenarios a-g, then the notify-app hot-reload scenario h)
set -u
cd "$(dirname "$0")"
ROOT=$PWD
export CARGO_TARGET_DIR=$ROOT/target
for p in figment-app config-rs-app notify-app; do
  (cd "$p" && cargo build -j 2 --bins --quiet 2>/dev/null) || { echo "build of $p failed"; exit 1; }
done
BIN=$CARGO_TARGET_DIR/debug

# run TOOL SCENARIO FIXTURE|- [ENV=VAL ...]: runs TOOL in a fresh dir holding FIXTURE as service.yaml
run() {
  local tool=$1 scen=$2 fix=$3; shift 3
  local dir=$ROOT/scratch/$tool/$scen out=$ROOT/results/$tool/$scen.txt
  rm -rf "$dir"; mkdir -p "$dir" "$(dirname "$out")"
  [ "$fix" != - ] && cp "fixtures/$fix" "$dir/service.yaml"
  {
    echo "\$ ${*:+$* }$tool   # service.yaml = ${fix/#-/(none)}"
    (cd "$dir" && env -i PATH="$PATH" "$@" "$BIN/$tool" 2>&1); echo "exit=$?"
  } > "$out"
}

for tool in figment-app config-rs-app notify-app; do
  run $tool a_valid_struct_duration   valid.yaml
  run $tool a_duration_5s             duration_5s.yaml
  run $tool a_duration_integer        duration_int.yaml
  run $tool b_typo_and_missing        typo_missing.yaml
  run $tool c_typo_extra_only         typo_extra.yaml
  run $tool d_two_errors              two_errors.yaml
  run $tool e_dark_mode_yes           dark_mode_yes.yaml
  run $tool f_missing_file            -
  run $tool f2_yaml_syntax_error      syntax_error.yaml
  run $tool g_env_url_APP__DB__URL    valid.yaml APP__DB__URL=postgres://x
  run $tool g_env_url_APP_DB__URL     valid.yaml APP_DB__URL=postgres://x
  run $tool g_env_bad_port_APP__      valid.yaml APP__SERVER__PORT=notaport
  run $tool g_env_bad_port_APP_       valid.yaml APP_SERVER__PORT=notaport
  run $tool g_env_secret_port_APP__   valid.yaml APP__SERVER__PORT=sk-live-CANARY123
  run $tool g_env_secret_port_APP_    valid.yaml APP_SERVER__PORT=sk-live-CANARY123
done

# figment's Yaml::file() ignores a missing file; the file_exact() variant (second binary of figment-app):
run figment-exact f_missing_file - 
run figment-exact a_valid_struct_duration valid.yaml

[ "${SKIP_WATCH:-}" = 1 ] || "$ROOT/watch.sh"
"$ROOT/count_glue.sh" | tee "$ROOT/results/glue_lines.txt"
