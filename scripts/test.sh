#!/usr/bin/env bash
# Lint, format check and the test suite, in the environment scripts/setup.sh made.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
