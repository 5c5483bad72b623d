#!/usr/bin/env bash
# Runs a smoke suite of tb_gradflow against each supported TensorFlow minor version, each in its
# own venv with what pip resolves for "tb_gradflow[cpu,test]" plus that TensorFlow (its own
# TensorBoard, protobuf, Keras 3 and numpy). Prints one Markdown table row per version, which is
# what the README's "TensorFlow versions" table holds.
#
# Usage: scripts/tf_matrix.sh [MINOR ...]        (default: 2.16 2.17 2.18 2.19 2.20 2.21)
# Env:   MATRIX_DIR (venvs and logs, default /tmp/tb_gradflow-tf-matrix), PYTHON (default python3)
#
# The smoke suite: the capture engine against a plain GradientTape (causes, states), summaries,
# the Keras callback in model.fit, the CLI over written logdirs, and the plugin's routes over a
# real TensorBoard process of that version.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${MATRIX_DIR:-/tmp/tb_gradflow-tf-matrix}"
python="${PYTHON:-python3}"
minors=("$@")
[ "${#minors[@]}" -eq 0 ] && minors=(2.16 2.17 2.18 2.19 2.20 2.21)
suite=(tests/test_capture_causes.py tests/test_capture_states.py tests/test_summary.py
       tests/test_keras_callback.py tests/test_cli.py tests/test_plugin_routes.py)
mkdir -p "$dir"

echo "| TensorFlow | Keras | TensorBoard | protobuf | numpy | smoke suite |"
echo "|---|---|---|---|---|---|"
for minor in "${minors[@]}"; do
  venv="$dir/tf-$minor"
  log="$dir/tf-$minor.log"
  if [ ! -x "$venv/bin/python" ]; then "$python" -m venv "$venv"; fi
  if ! "$venv/bin/pip" install -q "$root[cpu,test]" "tensorflow-cpu==$minor.*" >"$log" 2>&1; then
    echo "| $minor | — | — | — | — | does not install (see $log) |"
    continue
  fi
  versions=$("$venv/bin/python" - <<'EOF' 2>>"$log"
from importlib.metadata import version
print(" | ".join(version(p) for p in ("tensorflow-cpu", "keras", "tensorboard", "protobuf", "numpy")))
EOF
  )
  # From the checkout (its tb_gradflow first on sys.path, the same code the venv installed).
  (cd "$root" && TF_CPP_MIN_LOG_LEVEL=2 timeout 1800 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
     "${suite[@]}" >>"$log" 2>&1)
  result=$(grep -E "^[0-9]+ (passed|failed)|^(FAILED|ERROR) |[0-9]+ (passed|failed|error)" "$log" | tail -1)
  echo "| $versions | ${result:-no result (see $log)} |"
done
