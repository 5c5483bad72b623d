#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets itself up, then runs pytest (Python, plugin over
# a real TensorBoard, browser tests in Debian's Chromium) and the frontend's unit tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/.ci/bootstrap"
cd "$root"
(cd frontend && npm test --silent)
exec "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests
