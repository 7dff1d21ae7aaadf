#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu machine.
# Quiet when everything is already present; installs what is missing; says clearly what failed.
# Needs: a Swift toolchain on PATH (not installed here) and the SQLite headers (libsqlite3-dev).
set -euo pipefail

fail() {
    echo "setup: $*" >&2
    exit 1
}

if ! command -v swift >/dev/null 2>&1; then
    fail "no 'swift' on PATH; install a Swift 6 toolchain from https://www.swift.org/install/ first"
fi

# --- stunnel4 (optional) ---------------------------------------------------------------------
# The TLS integration test (Tests/IntegrationTests/TLSTests.swift) runs a hub and nodes through
# stunnel4. Installed when apt-get can; when it cannot, say so: that test then skips, loudly.
if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]]; then
        echo "setup: installing stunnel4 (for the TLS integration test)…" >&2
        if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y -q stunnel4 >/dev/null 2>&1; then
            env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
            env DEBIAN_FRONTEND=noninteractive apt-get install -y -q stunnel4 >/dev/null 2>&1 \
                || echo "setup: WARNING: could not install stunnel4 with apt-get; the TLS integration test will be skipped" >&2
        fi
    else
        echo "setup: WARNING: stunnel4 is not installed (needs root and apt-get); the TLS integration test will be skipped" >&2
    fi
fi

if [[ -f /usr/include/sqlite3.h ]]; then
    exit 0
fi

# --- SQLite development headers -------------------------------------------------------------
command -v apt-get >/dev/null 2>&1 \
    || fail "/usr/include/sqlite3.h is missing and apt-get is not available; install the SQLite development headers (libsqlite3-dev) by hand"

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
        || fail "/usr/include/sqlite3.h is missing; run 'apt-get install libsqlite3-dev' as root (sudo is not available)"
    sudo=(sudo)
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsqlite3-dev >>"$log" 2>&1
}

echo "setup: installing libsqlite3-dev (SQLite headers)…" >&2
if ! install; then
    # The package lists may be missing or stale on a fresh machine: refresh once and retry.
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 && install; }; then
        cat "$log" >&2
        fail "could not install libsqlite3-dev with apt-get (output above)"
    fi
fi

[[ -f /usr/include/sqlite3.h ]] \
    || fail "libsqlite3-dev was installed but /usr/include/sqlite3.h is still missing"
