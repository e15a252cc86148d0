#!/usr/bin/env bash
# Lint, format check, the import contract and the test suite, in the environment setup.sh made.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
exec .venv/bin/pytest "$@"
