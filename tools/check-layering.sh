#!/usr/bin/env bash
# Checks that imports only point downward (see docs / DESIGN "Layout and layering").
#
# Every Swift file under Sources/<Target>/ may import only what its row below allows.
# "*" means anything, minus the modules in the "forbidden" column. Targets whose directory
# does not exist yet are skipped; a target that exists but has no row is an error (add one).
# Everywhere else (Tests/, tools/, …) the only rule is that nobody but SiyuSQLite imports CSQLite
# and nobody but SiyuNet imports CSiyuNet (the C shims of the two modules that talk to the system).
# SiyuCLI may use SiyuNode (`siyu sync`/`siyu verify` run the node's sync engine, SyncRound, in
# process rather than a copy of it) and SiyuNet (for the operator log's levels); it still makes
# no socket call itself, and SiyuNode never imports SiyuCLI. SiyuNet may use SiyuSession (it hosts a
# session on a TCP connection: TCPSessionHost); SiyuSession never imports SiyuNet.
# The test-only libraries under Tests/ (SiyuTestSupport: the helpers the test targets share;
# SiyuPropertySupport: the property test's generator) may import whatever the tests import, and
# nothing under Sources/ may import them: no product ships a test helper.
#
# Recognised forms: `import M`, `import M.Sub`, `import struct M.T` (and other kinds),
# `@testable import M`, `@_exported import M`, `@preconcurrency import M`, `@_spi(X) import M`,
# `public|package|internal|fileprivate|private import M`, several imports on one line
# separated by `;`. Imports inside `//` comments, `/* … */` comments and `"""` strings are ignored.
#
# Prints `file:line: module A must not import B (allowed: …)` per violation and exits 1,
# or a one-line OK summary and exits 0.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
#  target       | allowed imports                                              | forbidden
# ---------------------------------------------------------------------------------------------
RULES='
SiyuCore        | Foundation                                                   |
SiyuSQLite      | Foundation CSQLite                                           |
SiyuStore       | Foundation SiyuCore SiyuSQLite                               |
SiyuWire        | Foundation SiyuCore                                          |
SiyuSession     | Foundation SiyuCore SiyuWire                                 |
SiyuNet         | Foundation Glibc Dispatch CSiyuNet SiyuCore SiyuWire SiyuSession |
SiyuNode        | Foundation Dispatch SiyuCore SiyuWire SiyuNet SiyuStore SiyuSession |
SiyuHub         | Foundation Dispatch SiyuCore SiyuWire SiyuNet SiyuStore SiyuSession |
SiyuProbe       | Foundation SiyuCore SiyuWire SiyuNet                         |
SiyuCommandLine | Foundation                                                   |
SiyuWeCom       | Foundation FoundationXML SiyuCore                            |
SiyuCLI         | Foundation SiyuCore SiyuStore SiyuWire SiyuCommandLine SiyuWeCom SiyuNode SiyuNet |
siyu            | *                                                            | CSQLite CSiyuNet
siyu-node       | *                                                            | CSQLite CSiyuNet
siyu-hub        | *                                                            | CSQLite CSiyuNet
siyu-bench      | *                                                            | CSQLite CSiyuNet
'
# Test-only libraries (under Tests/): no target under Sources/ may import them, whatever its row says.
TEST_ONLY="SiyuTestSupport SiyuPropertySupport CSiyuTestSupport"
# The one module that may import the SQLite C library, and the one that may import the epoll shim.
CSQLITE_IMPORTER="SiyuSQLite"
CSIYUNET_IMPORTER="SiyuNet"
# And the one test library that may import its C shim (posix_spawn close-from, pipe2).
CSIYUTESTSUPPORT_IMPORTER="SiyuTestSupport"
# ---------------------------------------------------------------------------------------------

cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A allowed=() forbidden=()
while IFS='|' read -r target allow deny; do
    target="$(echo "$target" | xargs)"
    [[ -z "$target" ]] && continue
    allowed[$target]="$(echo "$allow" | xargs)"
    forbidden[$target]="$(echo "$deny" | xargs)"
done <<<"$RULES"

# Prints "line<TAB>module" for every import statement in the given Swift file.
list_imports() {
    awk '
    BEGIN { inblock = 0; instring = 0 }
    {
        line = $0
        # Inside a multi-line string literal: skip until the closing """.
        n = gsub(/"""/, "\"\"\"", line)
        if (instring) { if (n % 2 == 1) instring = 0; next }
        if (n % 2 == 1) { instring = 1 }
        # Block comments: skip from a line starting with /* until */.
        if (inblock) {
            i = index(line, "*/"); if (i == 0) next
            line = substr(line, i + 2); inblock = 0
        }
        if (line ~ /^[[:space:]]*\/\*/) {
            sub(/^[[:space:]]*\/\*/, "", line)
            i = index(line, "*/"); if (i == 0) { inblock = 1; next }
            line = substr(line, i + 2)
        }
        i = index(line, "//"); if (i > 0) line = substr(line, 1, i - 1)
        count = split(line, parts, ";")
        for (p = 1; p <= count; p++) {
            s = parts[p]
            if (s !~ /^[[:space:]]*((@[A-Za-z_]+(\([^)]*\))?|public|package|internal|fileprivate|private)[[:space:]]+)*import[[:space:]]+[A-Za-z_]/) continue
            sub(/^[[:space:]]*((@[A-Za-z_]+(\([^)]*\))?|public|package|internal|fileprivate|private)[[:space:]]+)*import[[:space:]]+/, "", s)
            sub(/^(typealias|struct|class|enum|protocol|let|var|func)[[:space:]]+/, "", s)
            if (match(s, /^[A-Za-z_][A-Za-z0-9_]*/)) print FNR "\t" substr(s, RSTART, RLENGTH)
        }
    }' "$1"
}

contains_word() {  # contains_word "a b c" b
    [[ " $1 " == *" $2 "* ]]
}

violations=0
files=0
imports=0
targets=0

report() {  # report file line target module allowed-text
    echo "$1:$2: module $3 must not import $4 (allowed: $5)"
    violations=$((violations + 1))
}

# Sources/<Target>: the rules table.
for dir in Sources/*/; do
    target="$(basename "$dir")"
    mapfile -d '' swift_files < <(find "$dir" -name '*.swift' -type f -print0 | sort -z)
    [[ ${#swift_files[@]} -eq 0 ]] && continue  # e.g. the CSQLite system library, or an empty target
    if [[ -z "${allowed[$target]+set}" ]]; then
        echo "$dir: no layering rule for target $target; add a row to the table in tools/check-layering.sh"
        violations=$((violations + 1))
        continue
    fi
    targets=$((targets + 1))
    allow="${allowed[$target]}"
    deny="${forbidden[$target]}"
    if [[ "$allow" == "*" ]]; then
        allow_text="anything except ${deny:-nothing}"
    else
        allow_text="$allow"
    fi
    for file in "${swift_files[@]}"; do
        files=$((files + 1))
        while IFS=$'\t' read -r line module; do
            imports=$((imports + 1))
            if contains_word "$TEST_ONLY" "$module"; then
                report "$file" "$line" "$target" "$module" "$allow_text; never a test-only library"
            elif [[ "$allow" == "*" ]]; then
                contains_word "$deny" "$module" && report "$file" "$line" "$target" "$module" "$allow_text"
            elif ! contains_word "$allow" "$module" || contains_word "$deny" "$module"; then
                report "$file" "$line" "$target" "$module" "$allow_text"
            fi
        done < <(list_imports "$file")
    done
done

# Everything else: only SiyuSQLite may import CSQLite, only SiyuNet CSiyuNet, only SiyuTestSupport
# CSiyuTestSupport.
while IFS= read -r -d '' file; do
    file="${file#./}"
    files=$((files + 1))
    case "$file" in
        */*/*) owner="$(echo "$file" | cut -d/ -f2)" ;;  # Tests/SiyuStoreTests/x.swift -> SiyuStoreTests
        *) owner="$file" ;;
    esac
    while IFS=$'\t' read -r line module; do
        imports=$((imports + 1))
        if [[ "$module" == "CSQLite" ]]; then
            report "$file" "$line" "$owner" "CSQLite" "only $CSQLITE_IMPORTER may import CSQLite"
        fi
        if [[ "$module" == "CSiyuNet" ]]; then
            report "$file" "$line" "$owner" "CSiyuNet" "only $CSIYUNET_IMPORTER may import CSiyuNet"
        fi
        if [[ "$module" == "CSiyuTestSupport" && "$owner" != "$CSIYUTESTSUPPORT_IMPORTER" ]]; then
            report "$file" "$line" "$owner" "CSiyuTestSupport" "only $CSIYUTESTSUPPORT_IMPORTER may import CSiyuTestSupport"
        fi
    done < <(list_imports "$file")
done < <(find . -path ./Sources -prune -o -path './.*' -prune -o -name '*.swift' -type f -print0 | sort -z)

if [[ $violations -gt 0 ]]; then
    echo "layering: $violations violation(s)" >&2
    exit 1
fi
echo "layering OK: $imports imports in $files Swift files checked ($targets Sources targets ruled; only $CSQLITE_IMPORTER imports CSQLite, only $CSIYUNET_IMPORTER CSiyuNet, only $CSIYUTESTSUPPORT_IMPORTER CSiyuTestSupport; no Sources target imports $TEST_ONLY)"
