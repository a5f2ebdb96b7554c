#!/usr/bin/env bash
# Create .venv from the lockfile with Python 3.13 found on this machine; never downloads a
# Python build. Idempotent: a second run with an unchanged lockfile does almost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in "${PYTHON313:-}" python3.13 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

PY=$(find_python) || { echo "Python 3.13 is required (pyenv install 3.13, or set PYTHON313=/path/to/python3.13)" >&2; exit 1; }
UV_VERSION=0.13.9
if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PY" -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_PYTHON_DOWNLOADS=never
.tools/bin/uv sync --frozen --python "$PY" --quiet
