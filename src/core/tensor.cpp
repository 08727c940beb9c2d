#include "moe/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "moe/error.h"

namespace moe {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::bf16: return 2;
        case DType::i32: return 4;
    }
    return 0;
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::bf16: return "bf16";
        case DType::i32: return "i32";
    }
    return "?";
}

Shape::Shape(std::initializer_list<int64_t> d) {
    if (d.size() > size_t(kMaxDims)) fail("shape", "at most 4 dimensions are supported");
    for (int64_t v : d) dims[ndim++] = v;
}

int64_t Shape::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
}

bool Shape::operator==(const Shape& o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; ++i)
        if (dims[i] != o.dims[i]) return false;
    return true;
}

std::string Shape::str() const {
    std::string s = "(";
    for (int i = 0; i < ndim; ++i) {
        if (i) s += ", ";
        s += std::to_string(dims[i]);
    }
    if (ndim == 1) s += ",";
    return s + ")";
}

void check_tensor(const char* op, const char* what, const TensorView& t, const Shape& expected,
                  DType dtype) {
    if (t.data == nullptr && expected.numel() > 0)
        fail(op, std::string(what) + " is missing (null), expected shape " + expected.str());
    if (t.shape != expected)
        fail(op, std::string("expected ") + what + " of shape " + expected.str() + ", got " +
                     t.shape.str());
    if (t.dtype != dtype)
        fail(op, std::string("expected ") + what + " of dtype " + dtype_name(dtype) + ", got " +
                     dtype_name(t.dtype));
}

Buffer::Buffer(DType dtype, Shape shape) {
    view_.dtype = dtype;
    view_.shape = shape;
    size_t bytes = view_.nbytes();
    if (bytes == 0) return;
    size_t rounded = (bytes + 63) / 64 * 64;
    view_.data = std::aligned_alloc(64, rounded);
    if (!view_.data) throw std::bad_alloc();
    std::memset(view_.data, 0, rounded);
}

Buffer::~Buffer() { std::free(view_.data); }

Buffer::Buffer(Buffer&& o) noexcept : view_(o.view_) { o.view_.data = nullptr; }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        std::free(view_.data);
        view_ = o.view_;
        o.view_.data = nullptr;
    }
    return *this;
}

}  // namespace moe
