// One allocation, many tensors (llm.c's malloc_and_point_parameters): parameters, gradients
// and optimizer state each live in one Arena, addressed through a struct of views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "moe/tensor.h"

namespace moe {

class Arena {
public:
    // Reserve room for a tensor; returns its index. Every tensor starts 64-byte aligned.
    size_t reserve(DType dtype, Shape shape);
    // Allocate all reserved tensors at once (zeroed). Further reserve() calls are errors.
    void allocate();
    TensorView view(size_t index) const;
    size_t bytes() const { return total_; }
    float* base_f32() const { return static_cast<float*>(base_); }

    Arena() = default;
    ~Arena();
    Arena(Arena&& o) noexcept;
    Arena& operator=(Arena&& o) noexcept;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

private:
    struct Entry {
        DType dtype;
        Shape shape;
        size_t offset;
    };
    std::vector<Entry> entries_;
    size_t total_ = 0;
    void* base_ = nullptr;
};

}  // namespace moe
