#!/usr/bin/env bash
# `make test` after the build: the whole suite, in two streams that run side by side.
#
# - the end-to-end binary (`tests/`, package `tests`), whose tests mostly wait on real
#   servers, clients and browsers, streams its output here;
# - every other test binary and the doc tests (`--workspace --exclude tests`), which are
#   mostly CPU-bound, write to a log that is printed once both are done.
#
# `cargo test` runs test binaries one after another; two invocations overlap them (both
# are built already, so neither waits on the other's build lock for long). The shared test
# PostgreSQL is stopped at the end whatever happened. Exit status: non-zero when either
# stream failed; the last lines say which.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/test-logs"
units_log="$target/test-logs/units.log"

"$cargo" test --workspace --exclude tests --no-fail-fast >"$units_log" 2>&1 &
units_pid=$!
"$cargo" test -p tests --no-fail-fast
e2e=$?
wait "$units_pid"
units=$?

echo
echo "== the other test binaries and the doc tests (from $units_log)"
cat "$units_log"
"$target/debug/test-cluster" stop

word() { if [ "$1" -eq 0 ]; then echo ok; else echo "FAILED (exit $1)"; fi; }
echo
echo "== end-to-end tests: $(word $e2e); other tests: $(word $units)"
[ "$e2e" -eq 0 ] && [ "$units" -eq 0 ]
