// Packing the decoder's Q4_0 / Q8_0 matrices by 8 rows (include/moe/infer.h, include/moe/qpack.h).
#include <memory>
#include <vector>

#include "moe/infer.h"
#include "moe/qpack.h"

namespace moe {

int64_t infer_weights_pack8(InferWeights& w, const ModelConfig& c, const std::function<void(const void*, uint64_t)>& release) {
    // The matrices the decoder multiplies through qmatmul, each with the row count of the
    // slices taken of it (an expert's rows of a stacked tensor) so that no slice splits a group.
    std::vector<QMatrix*> todo;
    auto add = [&](QMatrix& m, int64_t slice_rows) {
        if (qmatrix_packable(m) && slice_rows % 8 == 0) todo.push_back(&m);
    };
    add(w.lm_head, w.lm_head.rows);
    for (int64_t l = 0; l < int64_t(w.layers.size()); ++l) {
        InferLayerWeights& L = w.layers[size_t(l)];
        for (QMatrix* m : {&L.q, &L.k, &L.v, &L.o}) add(*m, m->rows);
        MoeQuantExperts& q = L.ffn.quant;
        if (q.active() && q.w1_e.empty()) {  // stacked experts (a GGUF); per-tensor experts stay
            const MoeLayerConfig f = c.ffn(l);
            add(q.w1, f.d_ff);
            add(q.w3, f.d_ff);
            add(q.w2, c.hidden());
        }
    }
    int64_t total = 0;
    for (const QMatrix* m : todo) total += m->rows * m->row_bytes();
    if (total == 0) return 0;
    struct Keep {
        std::shared_ptr<const void> before;
        std::unique_ptr<uint8_t[]> packed;
    };
    auto keep = std::make_shared<Keep>();
    keep->before = w.keep;
    keep->packed.reset(new uint8_t[size_t(total)]);  // written in full by the packing below
    uint8_t* dst = keep->packed.get();
    for (QMatrix* m : todo) {
        const QMatrix plain = *m;
        const int64_t bytes = m->rows * m->row_bytes();
        *m = qmatrix_pack8(plain, dst);
        if (release) release(plain.data, uint64_t(bytes));
        dst += bytes;
    }
    w.keep = keep;
    return total;
}

}  // namespace moe
