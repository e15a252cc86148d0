#!/usr/bin/env bash
# Set up .venv from nothing: find a Python >= 3.12, get uv, install the locked dependencies.
# Idempotent: a second run only checks that .venv matches uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
CANDIDATES="python3.12 python3.13 python3.14 python3 python"

python_ok() {  # is "$1" a Python >= 3.12?
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

pyenv_root() {
  local root="${PYENV_ROOT:-}"
  if [ -z "$root" ] && command -v pyenv >/dev/null 2>&1; then root=$(pyenv root 2>/dev/null || true); fi
  echo "${root:-$HOME/.pyenv}"
}

find_python() {
  local candidate path
  for candidate in $CANDIDATES; do
    path=$(command -v "$candidate" 2>/dev/null) || continue
    if python_ok "$path"; then echo "$path"; return 0; fi
  done
  for path in $(ls -d "$(pyenv_root)"/versions/*/bin/python3.1[2-9] 2>/dev/null | sort -V); do
    if python_ok "$path"; then echo "$path"; return 0; fi
  done
  return 1
}

if ! PYTHON=$(find_python); then
  echo "setup: no Python >= 3.12 found; looked for $CANDIDATES on PATH, then" \
    "$(pyenv_root)/versions/*/bin/python3.1[2-9]; install Python 3.12 or set PYENV_ROOT" >&2
  exit 1
fi

if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  UV=".cache/uv-bootstrap/bin/uv"
  if [ ! -x "$UV" ]; then
    "$PYTHON" -m venv .cache/uv-bootstrap
    .cache/uv-bootstrap/bin/python -m pip install --quiet "uv==$UV_VERSION"
  fi
fi

"$UV" sync --frozen --all-extras --compile-bytecode --python "$PYTHON" --quiet

# The HTML report's browser test drives Debian's chromium: installed quietly where apt-get can
# (as root, as CI runs); never a reason for setup to fail: without it that test skips.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
  && [ "$(id -u)" = 0 ]; then
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >/dev/null 2>&1; then
    echo "setup: chromium could not be installed; the HTML report's browser test cannot run" >&2
  fi
fi
echo "setup: .venv ready ($("$PYTHON" --version), $("$UV" --version))" >&2
