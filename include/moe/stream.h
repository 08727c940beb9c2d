// Memory bandwidth as John McCalpin's STREAM measures it (copy, scale, add, triad on three
// arrays of doubles, each far larger than the last-level cache), for `moe bench stream` and to
// set decode speeds (which read the weights once per token) against what the memory delivers.
#pragma once
#include <cstdint>

namespace moe {

struct StreamKernel {
    double best_GBps = 0;    // bytes / the shortest time of the reps (STREAM's "Best Rate")
    double median_GBps = 0;  // bytes / the median time
    double min_s = 0, median_s = 0;
    int64_t bytes = 0;       // counted per run as STREAM counts them (below)
};

struct StreamResult {
    int threads = 0;
    int64_t bytes_per_array = 0, elements = 0;  // doubles per array
    int reps = 0;                               // timed, after one untimed warm-up
    StreamKernel copy, scale, add, triad;
    bool valid = false;  // the arrays hold the values the kernels must have produced (STREAM's check)
};

// a, b, c of bytes_per_array / 8 doubles each, first touched in parallel with the schedule the
// kernels use; then reps + 1 times: copy c = a, scale b = s c, add c = a + b, triad a = b + s c
// (OpenMP, `threads` threads, static schedule; threads <= 0: OpenMP's default). Bytes counted
// as STREAM counts them: 2 arrays (16 bytes per element) for copy and scale, 3 (24 bytes) for
// add and triad; the write-allocate reads of the stored arrays are not counted. GB = 1e9 bytes.
// Allocates the three arrays (3 x bytes_per_array) for the duration of the call.
StreamResult stream_bandwidth(int threads, int64_t bytes_per_array, int reps);

}  // namespace moe
