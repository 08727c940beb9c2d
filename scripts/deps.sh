#!/usr/bin/env bash
# Installs the Debian 12 packages moe needs (idempotent: does nothing when all are present).
set -euo pipefail
# bible-kjv: the default training corpus (the King James Bible, read out by its `bible` tool).
# openmpi-bin libopenmpi-dev: expert parallelism (-DMOE_MPI, docs/distributed.md); optional.
# libpcre2-dev libutf8proc-dev: the tokenizers' pre-tokenizer regexes and NFC (docs/tokenizers.md).
PACKAGES=(build-essential cmake pkg-config libopenblas-openmp-dev libgtest-dev
          nlohmann-json3-dev libcli11-dev bible-kjv openmpi-bin libopenmpi-dev
          libpcre2-dev libutf8proc-dev)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "moe: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
