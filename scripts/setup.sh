#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, run the main job on its default
# (train a small MoE language model on the KJV Bible and print a sample).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -B build -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
# The corpus: the King James Bible, one verse a line (4.4 MB), written once.
mkdir -p data
if [ ! -s data/kjv.txt ]; then
  bible -f "Gen1:1-Rev22:21" > data/kjv.txt.tmp && mv data/kjv.txt.tmp data/kjv.txt
fi
echo "moe: built ./build/moe; the main job: train an MoE language model on the KJV Bible (8 minutes), then sample"
./build/moe info
./build/moe train --data data/kjv.txt --time-budget 480
