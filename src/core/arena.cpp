#include "moe/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "moe/error.h"

namespace moe {

size_t Arena::reserve(DType dtype, Shape shape) {
    MOE_CHECK(base_ == nullptr, "arena", "reserve() after allocate()");
    MOE_CHECK(shape.numel() >= 0, "arena", "negative shape " + shape.str());
    size_t offset = total_;
    size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
    total_ += (bytes + 63) / 64 * 64;
    entries_.push_back({dtype, shape, offset});
    return entries_.size() - 1;
}

void Arena::allocate() {
    MOE_CHECK(base_ == nullptr, "arena", "allocate() called twice");
    if (total_ == 0) return;
    base_ = std::aligned_alloc(64, total_);
    if (!base_) throw std::bad_alloc();
    std::memset(base_, 0, total_);
}

TensorView Arena::view(size_t index) const {
    MOE_CHECK(index < entries_.size(), "arena", "no tensor " + std::to_string(index));
    const Entry& e = entries_[index];
    TensorView v;
    v.data = base_ ? static_cast<char*>(base_) + e.offset : nullptr;
    v.dtype = e.dtype;
    v.shape = e.shape;
    return v;
}

Arena::~Arena() { std::free(base_); }

Arena::Arena(Arena&& o) noexcept
    : entries_(std::move(o.entries_)), total_(o.total_), base_(o.base_) {
    o.base_ = nullptr;
    o.total_ = 0;
}

Arena& Arena::operator=(Arena&& o) noexcept {
    if (this != &o) {
        std::free(base_);
        entries_ = std::move(o.entries_);
        total_ = o.total_;
        base_ = o.base_;
        o.base_ = nullptr;
        o.total_ = 0;
    }
    return *this;
}

}  // namespace moe
