#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets itself up, then runs pytest (Python, plugin over
# a real TensorBoard, browser tests in Debian's Chromium) and the frontend's unit tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/.ci/bootstrap"
cd "$root"
# The quality gates (ruff, mypy, the generated proto, eslint, the committed bundles) fail the run.
PYTHON="$root/.venv/bin/python" PROTOC_PYTHON="$root/.venv-protoc/bin/python" bash "$root/scripts/gates.sh"
(cd frontend && npm test --silent)
exec "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests
