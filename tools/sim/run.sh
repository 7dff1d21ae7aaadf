#!/usr/bin/env bash
# The deterministic simulator (Tests/SiyuSimulationTests) over many seeds.
#
#   tools/sim/run.sh              # seeds 8-1007 (the 1,000 after the suite's fixed sample)
#   tools/sim/run.sh 0-9999       # any range FIRST-LAST, or a count N for seeds 0..N-1
#   tools/sim/run.sh 40-40        # one seed: reproduces that run exactly
#
# Each seed runs a hub, HQ and 2-4 stores in one process over MemoryTransport with real replicas
# on disk and one virtual clock: random edits while messages are dropped, duplicated, delayed,
# reordered and split, links partitioned and reset, clocks jump, nodes and the hub crash (between
# steps, inside a store effect, inside an edit) and restart from their files, and a file (the hub's
# or a node's, one side per seed) goes back to an earlier copy (a power loss). After healing,
# every digest, op set and conflict log must equal the hub's, every edit made must be at the
# hub, the property test's invariants must hold, and PRAGMA integrity_check must say ok.
# Prints the failing seeds (and each failure's last events); exit 1 if any.
# SIYU_SIM_STATS=1 prints per-seed counts; with one seed, SIYU_SIM_VERBOSE=1 SIYU_SIM_TRACE=/tmp/t.txt
# writes its whole trace (every decision and every frame sent) to that file: two runs of a seed, in
# different processes, write the same trace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seeds="${1:-8-1007}"
scratch="${SIYU_SIM_SCRATCH:-.build}"
echo "sim: seeds $seeds"
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests --scratch-path "$scratch" >"$log" 2>&1 || { tail -30 "$log"; exit 2; }
set +e
SWIFT_DETERMINISTIC_HASHING=1 SIYU_SIM_SEEDS="$seeds" \
    swift test --skip-build --scratch-path "$scratch" --filter 'SimulationTests/everyReplica' >"$log" 2>&1
status=$?
set -e
failing=$(grep -E "^✘ Test .*recorded an issue with 1 argument seed → [0-9]+" "$log" | sed -E 's/.*seed → ([0-9]+).*/\1/' | sort -nu | tr '\n' ' ' || true)
grep -E "^↳ simulation seed|^↳ seed [0-9]+:|^    (not quiescent|.* differs|.* lacks|.* lost|.* quarantined|.* integrity)" "$log" | head -40 || true
grep -E "Test run with|error:" "$log" | tail -3 || true
if [[ -n "$failing" ]]; then echo "sim: FAILING SEEDS: $failing"; fi
echo "sim: seeds $seeds, $(( $(date +%s) - start )) s, exit $status"
exit "$status"
