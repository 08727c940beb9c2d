// STREAM (include/moe/stream.h): the four kernels of McCalpin's stream.c (version 5.10) on
// doubles, timed one by one, with its check of the final values.
#include "moe/stream.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "moe/error.h"

namespace moe {
namespace {

constexpr const char* kOp = "stream";

struct Freer {
    void operator()(double* p) const { std::free(p); }
};
using Array = std::unique_ptr<double[], Freer>;

Array alloc(int64_t n) {
    const size_t bytes = (size_t(n) * sizeof(double) + 4095) / 4096 * 4096;
    double* p = static_cast<double*>(std::aligned_alloc(4096, bytes));  // not touched: first touch is parallel
    MOE_CHECK(p, kOp, "cannot allocate " + std::to_string(bytes >> 20) + " MiB for a STREAM array; try a smaller --size-mib");
    return Array(p);
}

StreamKernel summarize(std::vector<double> times, int64_t bytes) {
    std::sort(times.begin(), times.end());
    StreamKernel k;
    k.bytes = bytes;
    k.min_s = times.front();
    k.median_s = times.size() % 2 ? times[times.size() / 2]
                                  : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
    k.best_GBps = double(bytes) / k.min_s / 1e9;
    k.median_GBps = double(bytes) / k.median_s / 1e9;
    return k;
}

}  // namespace

StreamResult stream_bandwidth(int threads, int64_t bytes_per_array, int reps) {
    MOE_CHECK(reps >= 1, kOp, "needs at least one timed repetition, got " + std::to_string(reps));
    const int64_t n = bytes_per_array / int64_t(sizeof(double));
    MOE_CHECK(n >= 1024, kOp, "arrays of " + std::to_string(bytes_per_array) + " bytes are too small to measure");
    const int nt = threads > 0 ? threads : omp_get_max_threads();
    Array A = alloc(n), B = alloc(n), C = alloc(n);
    double* __restrict a = A.get();
    double* __restrict b = B.get();
    double* __restrict c = C.get();
    const double s = 3.0;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t j = 0; j < n; ++j) {
        a[j] = 1.0;
        b[j] = 2.0;
        c[j] = 0.0;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t j = 0; j < n; ++j) a[j] = 2.0 * a[j];  // as stream.c, before the timed loop

    using clock = std::chrono::steady_clock;
    std::vector<double> t[4];
    auto time = [](auto&& f) {
        const auto t0 = clock::now();
        f();
        return std::chrono::duration<double>(clock::now() - t0).count();
    };
    for (int r = 0; r <= reps; ++r) {  // repetition 0 warms up (stream.c also drops its first)
        const double t_copy = time([&] {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t j = 0; j < n; ++j) c[j] = a[j];
        });
        const double t_scale = time([&] {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t j = 0; j < n; ++j) b[j] = s * c[j];
        });
        const double t_add = time([&] {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t j = 0; j < n; ++j) c[j] = a[j] + b[j];
        });
        const double t_triad = time([&] {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t j = 0; j < n; ++j) a[j] = b[j] + s * c[j];
        });
        if (r == 0) continue;
        t[0].push_back(t_copy), t[1].push_back(t_scale), t[2].push_back(t_add), t[3].push_back(t_triad);
    }

    // stream.c's checkSTREAMresults: the same recurrence on scalars, then the mean error.
    double aj = 2.0, bj = 2.0, cj = 0.0;
    for (int r = 0; r <= reps; ++r) {
        cj = aj;
        bj = s * cj;
        cj = aj + bj;
        aj = bj + s * cj;
    }
    double ea = 0, eb = 0, ec = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : ea, eb, ec)
    for (int64_t j = 0; j < n; ++j) {
        ea += std::fabs(a[j] - aj);
        eb += std::fabs(b[j] - bj);
        ec += std::fabs(c[j] - cj);
    }
    const double eps = 1e-13;
    StreamResult res;
    res.threads = nt;
    res.bytes_per_array = n * int64_t(sizeof(double));
    res.elements = n;
    res.reps = reps;
    res.copy = summarize(t[0], 2 * res.bytes_per_array);
    res.scale = summarize(t[1], 2 * res.bytes_per_array);
    res.add = summarize(t[2], 3 * res.bytes_per_array);
    res.triad = summarize(t[3], 3 * res.bytes_per_array);
    res.valid = ea / double(n) / std::fabs(aj) < eps && eb / double(n) / std::fabs(bj) < eps &&
                ec / double(n) / std::fabs(cj) < eps;
    return res;
}

}  // namespace moe
