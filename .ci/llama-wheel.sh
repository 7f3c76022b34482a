#!/usr/bin/env bash
# Install llama-cpp-python[server] into the active virtualenv, pinned and built reproducibly.
# POWER_LOOP_WHEELHOUSE overrides where the built wheel is kept (default: ~/.cache/power-loop-ci).
set -euo pipefail

LLAMA_VERSION="0.3.36"
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
key="$(printf '%s %s %s' "$LLAMA_VERSION" "$LLAMA_CMAKE_ARGS" "$(python -c 'import sys; print(sys.implementation.cache_tag)')" \
  | sha256sum | cut -c1-16)"
house="${POWER_LOOP_WHEELHOUSE:-$HOME/.cache/power-loop-ci}/llama-cpp-python-${key}"

wheel="$(ls "$house"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $LLAMA_VERSION ($LLAMA_CMAKE_ARGS) into $house"
  tmp="$(mktemp -d)"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 python -m pip wheel -q --no-cache-dir --no-deps \
    -w "$tmp" "llama-cpp-python==$LLAMA_VERSION"
  mkdir -p "$house"
  mv "$tmp"/llama_cpp_python-*.whl "$house"/
  rm -rf "$tmp"
  wheel="$(ls "$house"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n1)"
fi
python -m pip install -q "${wheel}[server]"
python -c "import llama_cpp; assert llama_cpp.__version__ == '$LLAMA_VERSION', llama_cpp.__version__"
