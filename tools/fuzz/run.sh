#!/usr/bin/env bash
# Builds a libFuzzer target with libFuzzer + AddressSanitizer and runs it for a bounded time:
#     tools/fuzz/run.sh [decoders] [libFuzzer args]   FuzzDecoders.swift: frames, FrameReader, messages,
#                                                     change sets, op-log encoding (the default)
#     tools/fuzz/run.sh apply [libFuzzer args]        FuzzApply.swift: change sets applied to a real
#                                                     replica (Replica.apply), local edits, reopening
# The apply target is described after the decoders' notes below; everything else (FUZZ_SECONDS,
# FUZZ_BUILD, the summary, the exit status) works the same for both.
#
# Run (from anywhere; paths are relative to the repository root):
#     tools/fuzz/run.sh                         # 60 s, stops at the first crash
#     FUZZ_SECONDS=600 tools/fuzz/run.sh        # 10 min
#     FUZZ_SECONDS=600 tools/fuzz/run.sh -fork=1 -ignore_crashes=1
#                                               # keep going past crashes (one child process at a
#                                               # time), e.g. while a known finding is unfixed
# Extra arguments go to libFuzzer as they are.
#
# Environment:
#     FUZZ_SECONDS   fuzzing time in seconds (default 60)
#     FUZZ_BUILD=0   skip the build and reuse .build-fuzz/fuzz-decoders
#     SWIFTC         the compiler (default: swiftc on PATH)
#
# Output, all under .build-fuzz/ (git-ignored):
#     fuzz-decoders    the fuzzer binary
#     corpus/          the corpus: seeds from Protocol/vectors/*.vec (seed-<name>) plus what the
#                      fuzzer found interesting; kept between runs, so later runs start from it
#     artifacts/       crash-*, leak-*, timeout-*, oom-* inputs (the findings)
#     fuzz.log         the last run's libFuzzer output
#
# Reproduce a finding (prints the failed check's details, or the trap, then the stack trace;
# exit status 77 or 1 when it still fails, 0 when it passes):
#     .build-fuzz/fuzz-decoders <crash-file>                  e.g. .build-fuzz/artifacts/crash-<sha1>
#     .build-fuzz/fuzz-decoders <crash-file> 2>&1 | swift demangle --simplified   # readable names
# Check the kept reproducers (libFuzzer stops at the first failing file, so one at a time):
#     for f in tools/fuzz/crashes/*.bin; do .build-fuzz/fuzz-decoders "$f" >/dev/null 2>&1 && echo "pass $f" || echo "FAIL $f"; done
# Minimize a crash (writes a smaller input that fails the same way):
#     .build-fuzz/fuzz-decoders -minimize_crash=1 -max_total_time=120 -exact_artifact_path=/tmp/min.bin <crash-file>
#
# Build: SiyuCore and SiyuWire are compiled from Sources/ as two modules (whole-module, with the
# fuzzer's coverage instrumentation and ASan), exactly as the package splits them, so SiyuWire's
# `import SiyuCore` resolves and only public API is reachable; the fuzz target is compiled against
# them and linked with libFuzzer, which provides `main`.
#
# The apply target (`tools/fuzz/run.sh apply`): everything under .build-fuzz-apply/ instead, binary
# fuzz-apply. It also compiles Sources/SiyuSQLite (against the system SQLite, -lsqlite3) and
# Sources/SiyuStore, and links tools/fuzz/ApplySeeds.swift into the binary. Before fuzzing it
# rewrites tools/fuzz/apply-seeds/ (`fuzz-apply --write-seeds`: issue 11's hostile change sets) and
# replays every .changeset once, each on a fresh replica (-timeout=300; the 60k-origin seed takes
# about 30 s in this build), then copies those up to 64 KiB into the corpus (seed-<name>).
# libFuzzer flags: -max_len=65536 -timeout=30 -rss_limit_mb=4096. The replica lives in
# .build-fuzz-apply/work (SIYU_FUZZ_APPLY_DIR), recreated every 64 inputs; after a finding the
# inputs since the last reset are copied to .build-fuzz-apply/artifacts/session-<time>/, and
#     .build-fuzz-apply/fuzz-apply .build-fuzz-apply/artifacts/session-<time>/*.bin
# replays them in order in one process. FUZZ_APPLY_SEEDS=0 skips rewriting the seeds.
#
# Exit status: 0 if the run found nothing; 1 if the fuzzer found a crash (or a leak, timeout or
# out-of-memory input); other non-zero values if the build or the set-up failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

target=decoders
case "${1:-}" in
    apply|decoders) target="$1"; shift ;;
esac
if [[ "$target" == apply ]]; then
    out=.build-fuzz-apply
    bin="$out/fuzz-apply"
else
    out=.build-fuzz
    bin="$out/fuzz-decoders"
fi
corpus="$out/corpus"
artifacts="$out/artifacts"
seconds="${FUZZ_SECONDS:-60}"
swiftc="${SWIFTC:-swiftc}"

mkdir -p "$out/modules" "$out/obj" "$corpus" "$artifacts"

# ---- Build -------------------------------------------------------------------------------------
if [[ "${FUZZ_BUILD:-1}" != 0 ]]; then
    flags=(-sanitize=fuzzer,address -parse-as-library -O -g -swift-version 5 -wmo -I "$out/modules")
    # The toolchain's lld links quietly; the default gold linker warns about ASan's local symbols.
    if [[ -x "$(dirname "$(command -v "$swiftc")")/ld.lld" ]]; then flags+=(-use-ld=lld); fi
    mapfile -t core_sources < <(find Sources/SiyuCore -name '*.swift' | LC_ALL=C sort)
    mapfile -t wire_sources < <(find Sources/SiyuWire -name '*.swift' | LC_ALL=C sort)
    echo "build: SiyuCore (${#core_sources[@]} files)"
    "$swiftc" "${flags[@]}" -module-name SiyuCore -emit-module -emit-module-path "$out/modules/SiyuCore.swiftmodule" \
        -c "${core_sources[@]}" -o "$out/obj/SiyuCore.o"
    echo "build: SiyuWire (${#wire_sources[@]} files)"
    "$swiftc" "${flags[@]}" -module-name SiyuWire -emit-module -emit-module-path "$out/modules/SiyuWire.swiftmodule" \
        -c "${wire_sources[@]}" -o "$out/obj/SiyuWire.o"
    if [[ "$target" == apply ]]; then
        mapfile -t sqlite_sources < <(find Sources/SiyuSQLite -name '*.swift' | LC_ALL=C sort)
        mapfile -t store_sources < <(find Sources/SiyuStore -name '*.swift' | LC_ALL=C sort)
        echo "build: SiyuSQLite (${#sqlite_sources[@]} files)"
        "$swiftc" "${flags[@]}" -I Sources/CSQLite -module-name SiyuSQLite -emit-module -emit-module-path "$out/modules/SiyuSQLite.swiftmodule" \
            -c "${sqlite_sources[@]}" -o "$out/obj/SiyuSQLite.o"
        echo "build: SiyuStore (${#store_sources[@]} files)"
        "$swiftc" "${flags[@]}" -I Sources/CSQLite -module-name SiyuStore -emit-module -emit-module-path "$out/modules/SiyuStore.swiftmodule" \
            -c "${store_sources[@]}" -o "$out/obj/SiyuStore.o"
        echo "build: $bin"
        "$swiftc" "${flags[@]}" -I Sources/CSQLite -module-name FuzzApply tools/fuzz/FuzzApply.swift tools/fuzz/ApplySeeds.swift \
            "$out/obj/SiyuCore.o" "$out/obj/SiyuWire.o" "$out/obj/SiyuSQLite.o" "$out/obj/SiyuStore.o" -lsqlite3 -o "$bin"
    else
        echo "build: $bin"
        "$swiftc" "${flags[@]}" -module-name FuzzDecoders tools/fuzz/FuzzDecoders.swift \
            "$out/obj/SiyuCore.o" "$out/obj/SiyuWire.o" -o "$bin"
    fi
fi
[[ -x "$bin" ]] || { echo "error: $bin is missing (build with FUZZ_BUILD=1)" >&2; exit 2; }

# ---- Seed corpus -------------------------------------------------------------------------------
if [[ "$target" == apply ]]; then
    # Issue 11's hostile change sets, written by the binary itself (ApplySeeds.swift).
    if [[ "${FUZZ_APPLY_SEEDS:-1}" != 0 ]]; then
        SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}" "$bin" --write-seeds tools/fuzz/apply-seeds > "$out/seeds.log" 2>&1 \
            || { cat "$out/seeds.log" >&2; echo "error: writing the seeds failed" >&2; exit 2; }
    fi
    # Every seed once, each on a fresh replica (a finding here stops the run, as a crash would).
    echo "seeds: replaying tools/fuzz/apply-seeds/*.changeset, each on a fresh replica (log: $out/seeds-replay.log)"
    mkdir -p "$out/seeds-work"
    if ! SIYU_FUZZ_APPLY_DIR="$root/$out/seeds-work" SIYU_FUZZ_APPLY_RESET=1 SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}" \
        "$bin" -timeout=300 -rss_limit_mb=4096 tools/fuzz/apply-seeds/*.changeset > "$out/seeds-replay.log" 2>&1; then
        grep -v '^#' "$out/seeds-replay.log" | tail -n 40
        echo "fuzz-apply: a seed fails (see $out/seeds-replay.log)"
        exit 1
    fi
    sed -n 's|^Executed tools/fuzz/apply-seeds/\(.*\)\.changeset in \([0-9]*\) ms|\2 \1|p' "$out/seeds-replay.log" \
        | sort -rn | head -n 3 | awk '{ printf "seeds: slowest %s (%d ms)\n", $2, $1 }'
    # The fuzzing corpus takes the seeds up to -max_len (64 KiB): the larger ones (60k origins, the
    # 100 KB author, the 200 KB ids, 16,384 stamps, 20k tag holders) take 0.2-30 s each in this
    # build and would be most of the run; programs (FuzzApply.swift) reach the same shapes smaller.
    seeds=0
    rm -f "$corpus"/seed-*
    for f in tools/fuzz/apply-seeds/*.changeset; do
        if (( $(stat -c %s "$f") <= 65536 )); then
            cp "$f" "$corpus/seed-$(basename "$f" .changeset)"
            seeds=$((seeds + 1))
        fi
    done
    echo "corpus: $seeds seeds from tools/fuzz/apply-seeds, $(find "$corpus" -type f | wc -l) inputs in $corpus"
else
    # A .vec file's `bytes:` section is the last one: indented lines of hex byte pairs.
    seeds=0
    for vec in Protocol/vectors/*.vec; do
        name="$(basename "$vec" .vec)"
        perl -ne '
            if (/^bytes:\s*$/) { $in = 1; next }
            if ($in && /^\S/) { $in = 0 }
            if ($in) { s/\s+//g; print pack("H*", $_) }
        ' "$vec" > "$corpus/seed-$name"
        [[ -s "$corpus/seed-$name" ]] || { echo "error: no bytes in $vec" >&2; exit 2; }
        seeds=$((seeds + 1))
    done
    echo "corpus: $seeds seeds from Protocol/vectors, $(find "$corpus" -type f | wc -l) inputs in $corpus"
fi

# ---- Fuzz --------------------------------------------------------------------------------------
# Swift's own crash backtracer reads memory that ASan has poisoned and adds a bogus ASan report
# after the real failure; with it off, libFuzzer prints the stack trace (Swift names mangled: pipe
# through `swift demangle --simplified` to read them).
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
marker="$out/.run-start"
touch "$marker"
echo "fuzz: $bin for ${seconds}s (log: $out/fuzz.log)"
status=0
if [[ "$target" == apply ]]; then
    limits=(-max_len=65536 -timeout=30 -rss_limit_mb=4096)
    export SIYU_FUZZ_APPLY_DIR="$root/$out/work"
    mkdir -p "$SIYU_FUZZ_APPLY_DIR"
else
    limits=(-max_len=4096 -timeout=20)
fi
"$bin" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus" > "$out/fuzz.log" 2>&1 || status=$?
if [[ "$target" == apply && $status != 0 && -d "$out/work/session" ]]; then
    # The replica's history since its last reset: a finding may need it to reproduce.
    session="$artifacts/session-$(date +%Y%m%d-%H%M%S)"
    cp -r "$out/work/session" "$session"
    echo "fuzz: inputs since the replica's last reset copied to $session (replay: $bin $session/*.bin)"
fi

# ---- Summary -----------------------------------------------------------------------------------
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -n 1)"
if [[ -z "$runs" ]]; then   # a crash ends the run before the final stats: use the last status line
    runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' "$out/fuzz.log" | tail -n 1)"
fi
cov="$(grep -o 'cov: [0-9]*' "$out/fuzz.log" | tail -n 1 | cut -d' ' -f2 || true)"
active="$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$out/fuzz.log" | tail -n 1 | cut -d' ' -f2 || true)"
corpus_files="$(find "$corpus" -type f | wc -l)"
corpus_bytes="$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
mapfile -t found < <(find "$artifacts" -type f -newer "$marker" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | LC_ALL=C sort)
rm -f "$marker"

if (( ${#found[@]} > 0 )) || (( status != 0 )); then
    echo "fuzz-$target: ${seconds}s, ${runs:-?} runs, coverage ${cov:-?}, corpus ${corpus_files} inputs (${corpus_bytes} bytes; in use ${active:-?}): FOUND A PROBLEM (libFuzzer exit ${status}); new artifacts: ${found[*]:-none}"
    echo "--- end of $out/fuzz.log:"
    grep -v '^#[0-9]' "$out/fuzz.log" | tail -n 40
    # Triage: rerun each artifact and name it by the failed check, or by the trap and the first
    # frame in Sources/, so that duplicates (e.g. from -fork=1 -ignore_crashes=1) group together.
    echo "--- findings (count, signature):"
    for f in "${found[@]}"; do
        log="$("$bin" -runs=1 "$f" 2>&1 || true)"
        sig="$(grep -m1 'check failed:' <<<"$log" | sed -E 's/^(.*check failed: [^:]*).*/\1/; s/ \[[^]]*\]//' || true)"
        if [[ -z "$sig" ]]; then
            sig="$(grep -m1 -o -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z -]+' <<<"$log" || true)"
            sig="$sig $(grep -m1 -o -E '(Sources|tools)/[^ ]*:[0-9]+' <<<"$log" || true)"
        fi
        echo "$sig"
    done | sort | uniq -c | sort -rn
    for f in "${found[@]}"; do echo "reproduce: $bin $f"; done
    exit 1
fi
echo "fuzz-$target: ${seconds}s, ${runs:-?} runs, coverage ${cov:-?}, corpus ${corpus_files} inputs (${corpus_bytes} bytes; in use ${active:-?}): no crashes"
