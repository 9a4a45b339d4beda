# Shared set-up for scripts/test and scripts/demo: a uv-managed environment from uv.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "==> installing uv (the workspace's package manager) with pip" >&2
  python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv
fi
uv() { python3 -m uv "$@"; }

echo "==> installing the workspace (core + integrations + test tools) from uv.lock" >&2
# --inexact: keep what scripts/test adds with pip outside the lock (torch for the DataLoader tests)
uv sync --all-packages --frozen --inexact --quiet --compile-bytecode
