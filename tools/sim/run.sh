#!/usr/bin/env bash
# The deterministic simulator (Tests/SiyuSimulationTests) over many seeds.
#
#   tools/sim/run.sh              # seeds 8-1007 (the 1,000 after the suite's fixed sample)
#   tools/sim/run.sh 0-9999       # any range FIRST-LAST, or a count N for seeds 0..N-1
#   tools/sim/run.sh 40-40        # one seed: reproduces that run exactly
#   tools/sim/run.sh 10,36,500-510  # a list of seeds and ranges
#   SIYU_SIM_RELEASE=1 tools/sim/run.sh 0-9999   # the same tests built optimized (-c release
#                                 # -enable-testing, in .build-rel): several times faster per seed
#
# Each seed runs a hub, HQ and 4-6 stores (issue 17) in one process over MemoryTransport with
# real replicas on disk and one virtual clock. The hub is split as `siyu-hub serve` splits it:
# reads (CHANGES, snapshots, digests) on a read-only connection of their own, PUSHes as group
# commits that also record the PULL cursors gathered meanwhile. Each store node is registered with its store
# (`add-node --store`), so it holds only its scope: the tag library and stores, its own staff,
# the customers it owns, its clerks' group chats and its orders; HQ is unscoped. Stores edit
# their own customers, chats and orders as their clerks, create new ones, and try edits of
# customers they do not hold (their own check must refuse them, numbering nothing); HQ edits
# anything and transfers customers between stores (at most twice each per run, within WeCom's
# two per 90 days) at random times, so during partitions, crashes and power losses, while the
# old store, offline, goes on editing the customer it believes is its own. Meanwhile messages
# are dropped, duplicated, delayed, reordered and split, links partitioned and reset, clocks
# jump, nodes and the hub crash (between steps, inside a store effect, inside an edit) and
# restart from their files, and a file (the hub's or a node's, one side per seed) goes back to
# an earlier copy (a power loss). Each late edit of a store is judged by the simulator's own
# reading of SPEC section 7 ("Transfers": taken until the store has pulled past the move, or
# while its clock is before then plus the 30 s window), and the hub's answer must agree.
# After healing: HQ's digest, op set and conflict log equal the hub's; each store's digest
# equals the hub's digest of its scope, and its op set and conflict log equal the hub's,
# filtered by each instance's home now (computed by the simulator from owner_store, store_id
# and owner, not by the hub's index) plus its own ops; no store holds an op of another origin
# outside its scope; every edit made is at the hub unless refused as SPEC allows; the property
# test's invariants hold; a rebuild of each replica changes nothing; and PRAGMA
# integrity_check says ok.
# Prints the failing seeds (and each failure's last events); exit 1 if any.
# SIYU_SIM_STATS=1 prints per-seed counts; with one seed, SIYU_SIM_VERBOSE=1 SIYU_SIM_TRACE=/tmp/t.txt
# writes its whole trace (every decision and every frame sent) to that file: two runs of a seed, in
# different processes, write the same trace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seeds="${1:-8-1007}"
build=(--scratch-path "${SIYU_SIM_SCRATCH:-.build}")
if [[ -n "${SIYU_SIM_RELEASE:-}" ]]; then
    build=(-c release -Xswiftc -enable-testing --scratch-path "${SIYU_SIM_SCRATCH:-.build-rel}")
fi
echo "sim: seeds $seeds${SIYU_SIM_RELEASE:+ (release build)}"
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests "${build[@]}" >"$log" 2>&1 || { tail -30 "$log"; exit 2; }
set +e
SWIFT_DETERMINISTIC_HASHING=1 SIYU_SIM_SEEDS="$seeds" \
    swift test --skip-build "${build[@]}" --filter 'SimulationTests/everyReplica' >"$log" 2>&1
status=$?
set -e
failing=$(grep -E "^✘ Test .*recorded an issue with 1 argument seed → [0-9]+" "$log" | sed -E 's/.*seed → ([0-9]+).*/\1/' | sort -nu | tr '\n' ' ' || true)
grep -E "^↳ simulation seed|^↳ seed [0-9]+:|^    (not quiescent|.* differs|.* lacks|.* lost|.* quarantined|.* integrity|.* holds|.* refused|.* took|.* numbered|.* held back|reading)" "$log" | head -40 || true
grep -E "Test run with|error:" "$log" | tail -3 || true
if [[ -n "$failing" ]]; then echo "sim: FAILING SEEDS: $failing"; fi
echo "sim: seeds $seeds, $(( $(date +%s) - start )) s, exit $status"
exit "$status"
