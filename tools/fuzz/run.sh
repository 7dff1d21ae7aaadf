#!/usr/bin/env bash
# Builds the libFuzzer target tools/fuzz/FuzzDecoders.swift (frames, FrameReader, messages,
# change sets, op-log encoding) with libFuzzer + AddressSanitizer and runs it for a bounded time.
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
# Exit status: 0 if the run found nothing; 1 if the fuzzer found a crash (or a leak, timeout or
# out-of-memory input); other non-zero values if the build or the set-up failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

out=.build-fuzz
bin="$out/fuzz-decoders"
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
    echo "build: $bin"
    "$swiftc" "${flags[@]}" -module-name FuzzDecoders tools/fuzz/FuzzDecoders.swift \
        "$out/obj/SiyuCore.o" "$out/obj/SiyuWire.o" -o "$bin"
fi
[[ -x "$bin" ]] || { echo "error: $bin is missing (build with FUZZ_BUILD=1)" >&2; exit 2; }

# ---- Seed corpus from the golden vectors -------------------------------------------------------
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

# ---- Fuzz --------------------------------------------------------------------------------------
# Swift's own crash backtracer reads memory that ASan has poisoned and adds a bogus ASan report
# after the real failure; with it off, libFuzzer prints the stack trace (Swift names mangled: pipe
# through `swift demangle --simplified` to read them).
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
marker="$out/.run-start"
touch "$marker"
echo "fuzz: $bin for ${seconds}s (log: $out/fuzz.log)"
status=0
"$bin" -max_total_time="$seconds" -max_len=4096 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus" > "$out/fuzz.log" 2>&1 || status=$?

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
    echo "fuzz-decoders: ${seconds}s, ${runs:-?} runs, coverage ${cov:-?}, corpus ${corpus_files} inputs (${corpus_bytes} bytes; in use ${active:-?}): FOUND A PROBLEM (libFuzzer exit ${status}); new artifacts: ${found[*]:-none}"
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
echo "fuzz-decoders: ${seconds}s, ${runs:-?} runs, coverage ${cov:-?}, corpus ${corpus_files} inputs (${corpus_bytes} bytes; in use ${active:-?}): no crashes"
