#!/usr/bin/env bash
# Installs the Debian 12 packages moe needs (idempotent: does nothing when all are present).
set -euo pipefail
PACKAGES=(build-essential cmake pkg-config libopenblas-openmp-dev libgtest-dev
          nlohmann-json3-dev libcli11-dev)
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
