#!/usr/bin/env bash
# Glue-line rule: in the rustfmt-formatted source, lines from the first `use` up to (not
# including) the `println!("ok")` that precedes the first read of the loaded value; blank lines,
# comment-only lines and the 4-line harness `fn main` (which only re-prints the error) excluded.
# The serde types come after `println!("ok")` and are never counted.
cd "$(dirname "$0")"
for f in figment-app/src/main.rs config-rs-app/src/main.rs notify-app/src/main.rs; do
  n=$(awk '/^use /{on=1} /println!\("ok"\)/{exit} /^fn main\(\)/{skip=1} on && !skip && !/^[[:space:]]*(\/\/.*)?$/{c++} skip && /^}/{skip=0} END{print c+0}' "$f")
  echo "$f: $n"
done
