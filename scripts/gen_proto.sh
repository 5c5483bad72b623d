#!/usr/bin/env bash
# Regenerates tb_gradflow/proto/gradflow_pb2.py and its type stub gradflow_pb2.pyi from
# gradflow.proto, with the pinned protoc (grpcio-tools) and mypy-protobuf. Run it after any change
# to the proto: the stub must follow the module, or mypy checks against stale fields.
#   PROTOC_PYTHON  Python with grpc_tools (default /work/protoc-venv/bin/python)
#   PROTOC_GEN_MYPY  mypy-protobuf's plugin (default: protoc-gen-mypy on PATH, else the dev venv's)
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_PYTHON=${PROTOC_PYTHON:-/work/protoc-venv/bin/python}
PROTOC_GEN_MYPY=${PROTOC_GEN_MYPY:-$(command -v protoc-gen-mypy || echo /work/main/.venv/bin/protoc-gen-mypy)}
"$PROTOC_PYTHON" -m grpc_tools.protoc -I. --python_out=. --mypy_out=. \
  --plugin=protoc-gen-mypy="$PROTOC_GEN_MYPY" tb_gradflow/proto/gradflow.proto
echo "regenerated tb_gradflow/proto/gradflow_pb2.py and gradflow_pb2.pyi"
