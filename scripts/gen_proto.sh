#!/usr/bin/env bash
# Regenerates tb_gradflow/proto/gradflow_pb2.py and its type stub gradflow_pb2.pyi from
# gradflow.proto, with the pinned protoc (grpcio-tools) and mypy-protobuf. Run it after any change
# to the proto: the stub must follow the module, or mypy checks against stale fields.
# Tools from the environment (.ci/bootstrap makes both and gates.sh passes them on):
#   PROTOC_PYTHON  a Python with grpcio-tools 1.62 (its protobuf < 5), e.g. .venv-protoc/bin/python
#   PROTOC_GEN_MYPY  mypy-protobuf's plugin (default: protoc-gen-mypy on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PROTOC_PYTHON:?set PROTOC_PYTHON to a Python with grpcio-tools 1.62 (see .ci/bootstrap)}"
PROTOC_GEN_MYPY=${PROTOC_GEN_MYPY:-$(command -v protoc-gen-mypy || true)}
: "${PROTOC_GEN_MYPY:?set PROTOC_GEN_MYPY to the protoc-gen-mypy of mypy-protobuf}"
"$PROTOC_PYTHON" -m grpc_tools.protoc -I. --python_out=. --mypy_out=. \
  --plugin=protoc-gen-mypy="$PROTOC_GEN_MYPY" tb_gradflow/proto/gradflow.proto
echo "regenerated tb_gradflow/proto/gradflow_pb2.py and gradflow_pb2.pyi"
