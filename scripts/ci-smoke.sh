#!/usr/bin/env bash
# CI smoke test of the INSTALLED mlptrain CLI on real MNIST, as a CI job would drive it:
# download from a file:// mirror, train one epoch, evaluate, and check the exit statuses
# the README promises (0 success, 1 runtime failure, 2 usage error, 3 gate not met).
#
#   scripts/ci-smoke.sh [SHARED_DATA_DIR]     (default: ../shared/data beside the repository)
#
# SHARED_DATA_DIR must hold mnist/ with the four .gz files; without them the script
# says "skipped: …" and exits 0. Data and runs go to a temporary directory, removed at
# the end. CI_SMOKE_THREADS sets fit's --threads (default 2).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${1:-$repo_root/../shared/data}"
threads="${CI_SMOKE_THREADS:-2}"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

for f in "${files[@]}"; do
    if [[ ! -f "$shared/mnist/$f" ]]; then
        echo "ci-smoke: skipped: no real data at $shared/mnist (missing $f)"
        exit 0
    fi
done
mnist="$(cd "$shared/mnist" && pwd)"

if ! command -v mlptrain >/dev/null 2>&1; then
    echo "ci-smoke: FAIL: no mlptrain on PATH (install the package first)" >&2
    exit 1
fi

# The caller's settings must not steer the checks.
unset MLPTRAIN_MIRROR MLPTRAIN_DATA_DIR MLPTRAIN_THREADS

work="$(mktemp -d "${TMPDIR:-/tmp}/ci-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"  # so nothing lands in the caller's directory (./data, ./runs)
data="$work/data"
run="$work/run"
log="$work/last.log"

passed=0
failed=0
note=""  # a check may set it to show a detail (e.g. the accuracy) on its line

# expect STATUS DESCRIPTION COMMAND...: run COMMAND (output in $log), check its exit status.
expect() {
    local want="$1" what="$2"
    shift 2
    local got=0
    note=""
    "$@" >"$log" 2>&1 || got=$?
    if [[ "$got" == "$want" ]]; then
        echo "ok    $what${note:+ ($note)}"
        passed=$((passed + 1))
    else
        echo "FAIL  $what${note:+ ($note)}: exit $got, expected $want"
        sed 's/^/      | /' "$log" | tail -n 15
        failed=$((failed + 1))
    fi
}

accuracy_above() {  # accuracy_above THRESHOLD: eval --json's accuracy must exceed it
    mlptrain eval "$run" --json --data-dir "$data" --threads "$threads" >"$work/eval.json" || return $?
    local accuracy
    accuracy="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$work/eval.json")" \
        || return $?
    note="accuracy $accuracy"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$accuracy" "$1"
}

refused_and_nothing_written() {  # a bad flag: exit 2, and no run directory
    local status=0
    mlptrain fit --lr -1 --data-dir "$data" --out "$work/bad-run" --quiet --threads 1 || status=$?
    [[ ! -e "$work/bad-run" ]] || { echo "run directory created"; return 99; }
    return "$status"
}

expect 0 "data download --mirror file://$mnist" \
    mlptrain data download --mirror "file://$mnist" --data-dir "$data"
expect 0 "data verify" \
    mlptrain data verify --dataset mnist --data-dir "$data"
expect 0 "fit --epochs 1 --hidden 64 --val-size 1000 --threads $threads" \
    mlptrain fit --epochs 1 --hidden 64 --val-size 1000 --quiet --out "$run" --threads "$threads" --data-dir "$data"
expect 0 "eval --json: accuracy > 0.9" accuracy_above 0.9
expect 0 "eval --min-accuracy 0.5 passes the gate" \
    mlptrain eval "$run" --min-accuracy 0.5 --data-dir "$data" --threads "$threads"
expect 3 "eval --min-accuracy 0.999 fails the gate (exit 3)" \
    mlptrain eval "$run" --min-accuracy 0.999 --data-dir "$data" --threads "$threads"
expect 2 "fit --lr -1 is a usage error (exit 2), writes nothing" refused_and_nothing_written
expect 1 "eval /nonexistent is a runtime error (exit 1)" \
    mlptrain eval /nonexistent --data-dir "$data"

echo "ci-smoke: $passed passed, $failed failed"
[[ "$failed" == 0 ]]
