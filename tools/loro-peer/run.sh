#!/usr/bin/env bash
# Runs the Loro peer benchmark (loro_peer.py) inside a private virtualenv.
# Usage: tools/loro-peer/run.sh [--quick] [--json] [--seed N]
# Exit 3: the environment could not be prepared (no venv support, pip failure).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
venv="$repo_root/.build/loro-peer-venv"
vpy="$venv/bin/python"

die3() { echo "loro-peer: $*" >&2; exit 3; }

have_host_python() { command -v python3 >/dev/null 2>&1; }

make_venv() {
  # Returns non-zero (and removes the partial directory) if venv creation fails.
  if python3 -m venv "$venv" >/dev/null 2>&1; then
    return 0
  fi
  rm -rf "$venv"
  return 1
}

if [ ! -x "$vpy" ] || ! "$vpy" -c 'import sys' >/dev/null 2>&1; then
  have_host_python || die3 "python3 not found on PATH"
  mkdir -p "$repo_root/.build"
  rm -rf "$venv"
  if ! make_venv; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "loro-peer: 'python3 -m venv' failed; trying apt-get install -y python3-venv" >&2
      pyver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
      if ! apt-get install -y -qq python3-venv >/dev/null 2>&1 \
         && ! apt-get install -y -qq "python${pyver}-venv" >/dev/null 2>&1; then
        # The package lists may simply be missing; refresh once and retry.
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq python3-venv >/dev/null 2>&1 \
          || apt-get install -y -qq "python${pyver}-venv" >/dev/null 2>&1 \
          || die3 "'python3 -m venv' is unavailable and apt-get install python3-venv failed"
      fi
      make_venv || die3 "'python3 -m venv' still fails after installing python3-venv"
    else
      die3 "'python3 -m venv' is unavailable; install it first (Debian/Ubuntu: sudo apt-get install python3-venv)"
    fi
  fi
fi

if ! "$vpy" -c 'import loro' >/dev/null 2>&1; then
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  if ! "$vpy" -m pip install -q --disable-pip-version-check loro >"$log" 2>&1 \
     || ! "$vpy" -c 'import loro' >/dev/null 2>&1; then
    reason="$(grep -E '^(ERROR|error)' "$log" | head -n 1 || true)"
    [ -n "$reason" ] || reason="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 || true)"
    die3 "pip install loro failed: ${reason:-unknown error (is PyPI reachable?)}"
  fi
  rm -f "$log"
  trap - EXIT
fi

exec "$vpy" "$script_dir/loro_peer.py" "$@"
