#!/usr/bin/env bash
# A long run of the replica convergence property test: many more seeds than `swift test` runs.
#
#   tools/soak/run.sh              # seeds 300-3299 (the 3,000 after the suite's fixed sample)
#   tools/soak/run.sh 0-9999       # any range FIRST-LAST, or a count N for seeds 0..N-1
#
# Each seed builds 3-6 replicas, makes random edits of every kind, delivers change sets late,
# duplicated and out of order — and, about half the time, as a random subset of their ops shuffled
# out of origin order (gap mode: receivers hold later ops of an origin without the earlier ones) —
# and requires equal digests, conflict logs and op sets, no lost write, every paid order holding
# exactly the lines its payer saw, closed conflicts agreeing with the value shown, and tables
# equal to a rebuild from the op log. A failure names its seed; rerun just that
# seed with `tools/soak/run.sh SEED-SEED`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tools/setup.sh
seeds="${1:-300-3299}"
echo "soak: convergence property test, seeds $seeds"
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
SIYU_PROPERTY_SEEDS="$seeds" swift test --filter ConvergencePropertyTests >"$log" 2>&1
status=$?
set -e
grep -E "✘|recorded an issue|Test run|error:" "$log" | head -50 || true
echo "soak: $(( $(date +%s) - start )) s, exit $status"
exit "$status"
