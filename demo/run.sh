#!/usr/bin/env bash
# The demo, from a fresh clone: sets itself up, trains the colour VAE broken and fixed, prints
# both gradflow reports, then serves the logdir in TensorBoard with the Gradient Flow tab.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/.ci/bootstrap" --no-browser
logdir="${LOGDIR:-$root/demo/logs}"
rm -rf "$logdir"
"$root/.venv/bin/python" "$root/demo/train.py" --logdir "$logdir" "$@"
port="${PORT:-6006}"
echo "TensorBoard: http://localhost:$port/#gradflow  (Ctrl-C to stop)"
exec "$root/.venv/bin/tensorboard" --logdir "$logdir" --port "$port" --bind_all
