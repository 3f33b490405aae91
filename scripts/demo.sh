#!/usr/bin/env bash
# Quick start: install what is missing, then run the demo on a private embedded server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/blackboard demo "$@"
