#!/usr/bin/env bash
# The quality gates, all of them; exits non-zero if any fails (each runs even after a failure,
# so that one run lists every problem). Config: pyproject.toml (ruff, mypy),
# frontend/lint/eslint.config.mjs (eslint). Tools, overridable for CI:
#   PYTHON  the venv's python (default: python3 on PATH); ruff and mypy are run as its modules
#   PROTOC_PYTHON  python with grpcio-tools 1.62 (.ci/bootstrap makes .venv-protoc): the generated
#                  proto module and stub must equal a fresh scripts/gen_proto.sh. Unset: the
#                  gate fails, unless GATES_SKIP_PROTO=1 says to skip it (a local run without it)
#   PROTOC_GEN_MYPY  mypy-protobuf's plugin (default: the one beside PYTHON)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PROTOC_PYTHON=${PROTOC_PYTHON:-}
PROTOC_GEN_MYPY=${PROTOC_GEN_MYPY:-$(dirname "$(command -v "$PYTHON")")/protoc-gen-mypy}
export PROTOC_PYTHON PROTOC_GEN_MYPY
BUNDLES=(tb_gradflow/plugin/static tb_gradflow/export/static)
failed=()

gate() {
  local name=$1
  shift
  echo "== gate $name: $*"
  if "$@"; then echo "== gate $name: ok"; else echo "== gate $name: FAILED"; failed+=("$name"); fi
}

unchanged() {  # the paths are as git holds them: no edit, no new file
  git diff --exit-code -- "$@" && [ -z "$(git status --porcelain -- "$@")" ]
}

proto() {
  scripts/gen_proto.sh >/dev/null && unchanged tb_gradflow/proto
}

eslint() {
  (cd frontend/lint && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent lint)
}

bundles() {
  (cd frontend && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build) && unchanged "${BUNDLES[@]}"
}

gate ruff "$PYTHON" -m ruff check .
gate mypy "$PYTHON" -m mypy
if [ "${GATES_SKIP_PROTO:-0}" = 1 ]; then echo "== gate proto: skipped (GATES_SKIP_PROTO=1)"; else gate proto proto; fi
gate eslint eslint
gate bundles bundles

if [ ${#failed[@]} -gt 0 ]; then
  echo "gates failed: ${failed[*]}"
  exit 1
fi
echo "all gates passed"
