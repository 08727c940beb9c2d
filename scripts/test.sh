#!/usr/bin/env bash
# One command: build and run every test, then the same tests under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs="$(nproc)"
cmake -B build -DCMAKE_BUILD_TYPE=Release -DMOE_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
# Every CPU path this machine has: the suite itself loops over the SIMD twins, and the whole
# suite also runs once forced onto the scalar path.
(cd build && ctest --output-on-failure -j"$jobs")
(cd build && MOE_CPU=scalar ctest --output-on-failure -j"$jobs" -R 'MoeLayer|LayerFixture|Router')
cmake -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMOE_SANITIZE=ON -DMOE_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
