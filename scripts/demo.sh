#!/usr/bin/env bash
# Quick start: install what is missing, then run the support scenario on a private embedded
# server (controller, compactor and agents as real processes; invariants checked at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/blackboard run scenarios/support.toml "$@"
