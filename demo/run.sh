#!/usr/bin/env bash
# The demo, from a fresh clone: sets up a runtime-only virtualenv (.venv: the package and
# TensorFlow, no test tools, no Node), trains the colour VAE broken and fixed, prints both
# gradflow reports, then serves the logdir in TensorBoard on localhost with the Gradient Flow tab.
#
# Environment:
#   LOGDIR        where the runs go (default demo/logs). A folder that holds anything but the
#                 demo's own runs (broken/, fixed/ with event files only) is refused, never emptied.
#   PORT          TensorBoard's port (default: the first free one from 6006).
#   DEMO_HOST     the address to serve on (default localhost; 0.0.0.0 to share it on the network).
#   DEMO_QUICK=1  a few training steps (tests);  DEMO_NO_SERVE=1  train and report, do not serve.
#   DEMO_PYTHON   a Python that already has tb_gradflow[cpu]: no virtualenv is made (tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ -n "${DEMO_PYTHON:-}" ]; then
  python="$DEMO_PYTHON"
else
  # Runtime dependencies only; tests/run.sh (.ci/bootstrap) adds the test tools, Node and Chromium.
  if [ ! -x "$root/.venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$root/.venv"
  fi
  stamp="$root/.venv/.gradflow-runtime-installed"
  if [ ! -f "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ]; then
    echo "demo: installing tb_gradflow[cpu] into $root/.venv (once)"
    "$root/.venv/bin/pip" install -q -e "$root[cpu]"
    touch "$stamp"
  fi
  python="$root/.venv/bin/python"
fi

logdir="${LOGDIR:-$root/demo/logs}"
quick=()
[ "${DEMO_QUICK:-}" = 1 ] && quick=(--quick)
# LOGDIR is checked before anything is written; only the demo's own runs are replaced.
"$python" "$root/demo/logdir.py" "$logdir"
TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" "$python" "$root/demo/train.py" --logdir "$logdir" "${quick[@]}" "$@"
[ "${DEMO_NO_SERVE:-}" = 1 ] && exit 0

host="${DEMO_HOST:-localhost}"
port="${PORT:-$("$python" "$root/demo/free_port.py" "$host" 6006)}"
echo "TensorBoard: http://$host:$port/#gradflow  (Ctrl-C to stop; PORT=... picks the port)"
exec "$python" -m tensorboard.main --logdir "$logdir" --host "$host" --port "$port"
