#!/usr/bin/env bash
# `make test` after the build: the whole suite, in two streams that run side by side.
#
# - the end-to-end binary (`tests/main.rs`), whose tests mostly wait on real servers,
#   clients and browsers, streams its output here;
# - every other test binary, then the doc tests, which are mostly CPU-bound, write to a
#   log that is printed once both streams are done.
#
# `cargo test` would run the binaries one after another. The test executables are the
# ones `make test` just built (`cargo test --workspace --no-run` lists them without
# building anything: same packages, same features); each runs in its package's
# directory, as `cargo test` runs it. Arguments go to every test binary (e.g. a name
# filter). The shared test PostgreSQL is stopped at the end whatever happened. Exit
# status: non-zero when either stream failed; the last lines say which.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-target}
logs="$target/test-logs"
mkdir -p "$logs"
units_log="$logs/units.log"

# One line per test executable: its package's directory, a tab, the executable.
list=$("$cargo" test --workspace --no-run --message-format=json-render-diagnostics -q |
    python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]) + "\t" + m["executable"])
') || { echo "run-suite: listing the test executables failed" >&2; exit 1; }

e2e_dir= e2e_exe=
others=()
while IFS=$'\t' read -r dir exe; do
    if [ "$(basename "$exe" | sed 's/-[0-9a-f]*$//')" = e2e ]; then
        e2e_dir=$dir e2e_exe=$exe
    else
        others+=("$dir"$'\t'"$exe")
    fi
done <<<"$list"
if [ -z "$e2e_exe" ]; then
    echo "run-suite: no end-to-end test executable" >&2
    exit 1
fi

# The other binaries one after another, then the doc tests, into the log.
(
    failed=0
    for entry in "${others[@]}"; do
        dir=${entry%%$'\t'*} exe=${entry#*$'\t'}
        echo "     Running $exe"
        (cd "$dir" && "$exe" "$@") || failed=$((failed + 1))
    done
    "$cargo" test --workspace --doc -q || failed=$((failed + 1))
    echo "run-suite: $failed failing binaries"
    [ "$failed" -eq 0 ]
) >"$units_log" 2>&1 &
units_pid=$!

echo "     Running $e2e_exe (the other test binaries write to $units_log)"
(cd "$e2e_dir" && "$e2e_exe" "$@")
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
