// GEMM library comparison on the products of a SwiGLU MoE expert (docs/gemm.md).
// One source, built once per library with GEMM_LIB_<NAME> defined, so the libraries' cblas
// symbols never meet in one binary. Each binary prints one JSON line per shape:
//   {"bench":"gemm","lib":..,"shape":..,"M":..,"N":..,"K":..,"ta":..,"tb":..,"threads":..,
//    "reps":..,"median_ms":..,"gflops":..}
// Usage: gemm_compare_<lib> [--threads N] [--reps R] [--only SUBSTRING]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "moe/rng.h"

// ---- the per-library adapter: name, thread setup, C = op(A) @ op(B) row-major -------------
#if defined(GEMM_LIB_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
static const char* kLib = "openblas";
static void lib_set_threads(int n) {
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
static std::string lib_info() { return std::string("core=") + openblas_get_corename(); }
static void lib_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                blasint(M), blasint(N), blasint(K), 1.0f, A, blasint(lda), B, blasint(ldb), 0.0f,
                C, blasint(ldc));
}

#elif defined(GEMM_LIB_BLIS)
#include <blis.h>
// BLIS sends a product with m, n or k under its "sup" thresholds (a few hundred on zen3) to its
// unpacked small/skinny-matrix kernels, which most MoE expert shapes are. GEMM_COMPARE_BLIS_SUP=0
// turns that off (the expert API's runtime object), reported as lib "blis_nosup", so both of
// BLIS's code paths are measured.
static const bool kBlisSup = !(std::getenv("GEMM_COMPARE_BLIS_SUP") &&
                               std::strcmp(std::getenv("GEMM_COMPARE_BLIS_SUP"), "0") == 0);
static const char* kLib = kBlisSup ? "blis" : "blis_nosup";
static void lib_set_threads(int n) {
    omp_set_num_threads(n);
    bli_thread_set_num_threads(n);
}
static std::string lib_info() {
    return std::string("version=") + bli_info_get_version_str() +
           " arch=" + bli_arch_string(bli_arch_query_id()) + (kBlisSup ? " sup=on" : " sup=off");
}
static void lib_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
    // Native typed API: general strides, so row-major is row stride ld, column stride 1, and
    // the trans flags apply to the stored matrix as in BLAS.
    float one = 1.0f, zero = 0.0f;
    rntm_t rntm;
    bli_rntm_init_from_global(&rntm);  // thread count from bli_thread_set_num_threads
    bli_rntm_set_l3_sup(kBlisSup, &rntm);
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 M, N, K, &one, const_cast<float*>(A), lda, 1, const_cast<float*>(B), ldb, 1,
                 &zero, C, ldc, 1, nullptr, &rntm);
}

#elif defined(GEMM_LIB_DNNL)
#include <dnnl.h>
static const char* kLib = "dnnl";
static void lib_set_threads(int n) { omp_set_num_threads(n); }  // the OpenMP build of oneDNN
static std::string lib_info() {
    const dnnl_version_t* v = dnnl_version();
    return "version=" + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " cpu_isa_hints=default";
}
static void lib_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
    if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C,
                   ldc) != dnnl_success) {
        std::fprintf(stderr, "dnnl_sgemm failed\n");
        std::exit(1);
    }
}

#elif defined(GEMM_LIB_OWN)
#include "moe/cpu.h"
#include "moe/gemm_own.h"
static const char* kLib = "own";
static void lib_set_threads(int n) { omp_set_num_threads(n); }
static std::string lib_info() {
    return std::string("path=") + moe::cpu_path_name(moe::cpu_active_path());
}
static void lib_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
    moe::gemm_f32_own(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

#else
#error "define one of GEMM_LIB_OPENBLAS, GEMM_LIB_BLIS, GEMM_LIB_DNNL, GEMM_LIB_OWN"
#endif

namespace {

struct Shape {
    std::string name;
    int64_t M, N, K;
    bool ta, tb;
};

// The six products of one SwiGLU expert with n routed rows, model dim D, hidden F
// (w1, w3: (F, D); w2: (D, F); x, dy: (n, D); h, a, dh: (n, F)).
void add_expert(std::vector<Shape>& out, const std::string& tag, int64_t n, int64_t D, int64_t F) {
    out.push_back({tag + ".fwd_h=x@w1T", n, F, D, false, true});
    out.push_back({tag + ".fwd_y=a@w2T", n, D, F, false, true});
    out.push_back({tag + ".bwd_da=dy@w2", n, F, D, false, false});
    out.push_back({tag + ".bwd_dw2=dyT@a", D, F, n, true, false});
    out.push_back({tag + ".bwd_dw1=dhT@x", F, D, n, true, false});
    out.push_back({tag + ".bwd_dx=dh@w1", n, D, F, false, false});
}

std::vector<Shape> shapes() {
    std::vector<Shape> s;
    add_expert(s, "S1_mixtral_mini", 1024, 1024, 2816);
    add_expert(s, "S2_olmoe", 256, 2048, 1024);
    add_expert(s, "S3_deepseek", 192, 2048, 1408);
    add_expert(s, "S3_deepseek_shared", 2048, 2048, 2816);
    s.push_back({"square_2048", 2048, 2048, 2048, false, false});
    return s;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2, min_reps = 5;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (arg == "--reps" && i + 1 < argc) min_reps = std::atoi(argv[++i]);
        else if (arg == "--only" && i + 1 < argc) only = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--threads N] [--reps R] [--only SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    threads = std::max(1, threads);
    min_reps = std::max(5, min_reps);
    lib_set_threads(threads);
    std::fprintf(stderr, "gemm_compare lib=%s %s threads=%d\n", kLib, lib_info().c_str(), threads);

    moe::Rng rng(42);
    for (const Shape& s : shapes()) {
        if (!only.empty() && s.name.find(only) == std::string::npos) continue;
        // Stored layouts: A (M, K) or, when ta, (K, M); B (K, N) or, when tb, (N, K); minimal ld.
        const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
        std::vector<float> A(size_t(s.M * s.K)), B(size_t(s.K * s.N)), C(size_t(s.M * s.N));
        rng.fill_normal(A.data(), int64_t(A.size()), 0.0f, 1.0f);
        rng.fill_normal(B.data(), int64_t(B.size()), 0.0f, 0.05f);
        auto run = [&] { lib_sgemm(s.ta, s.tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C.data(), ldc); };

        double t0 = now_s();
        run();  // warm-up: thread pool start, page faults on C, library-internal buffers
        const double warm = now_s() - t0;
        // At least min_reps, and for the small shapes enough to cover ~0.3 s, so the median is
        // not made of a handful of millisecond-scale samples on a noisy machine.
        const int reps = std::max(min_reps, std::min(60, int(0.3 / std::max(warm, 1e-6))));
        std::vector<double> ms;
        for (int r = 0; r < reps; ++r) {
            t0 = now_s();
            run();
            ms.push_back((now_s() - t0) * 1e3);
        }
        std::sort(ms.begin(), ms.end());
        const double median = reps % 2 ? ms[size_t(reps / 2)]
                                        : 0.5 * (ms[size_t(reps / 2 - 1)] + ms[size_t(reps / 2)]);
        const double gflops = 2.0 * double(s.M) * double(s.N) * double(s.K) / (median * 1e6);
        std::printf("{\"bench\":\"gemm\",\"lib\":\"%s\",\"shape\":\"%s\",\"M\":%lld,\"N\":%lld,"
                    "\"K\":%lld,\"ta\":%d,\"tb\":%d,\"threads\":%d,\"reps\":%d,"
                    "\"median_ms\":%.3f,\"gflops\":%.2f}\n",
                    kLib, s.name.c_str(), (long long)s.M, (long long)s.N, (long long)s.K,
                    int(s.ta), int(s.tb), threads, reps, median, gflops);
        std::fflush(stdout);
    }
    return 0;
}
