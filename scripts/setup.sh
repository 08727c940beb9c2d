#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, run the main job on its default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -B build -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
echo "moe: built ./build/moe; running the main job: moe bench layer --shape S1 (forward + backward)"
./build/moe info
./build/moe bench layer --shape S1 --backward --reps 3
