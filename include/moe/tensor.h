// Tensor views: a pointer, a dtype and a shape in PyTorch axis order (row-major, contiguous).
// A view never owns memory; Arena or Buffer owns it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "moe/bf16.h"

namespace moe {

enum class DType : uint8_t { f32, bf16, i32 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

constexpr int kMaxDims = 4;

struct Shape {
    int ndim = 0;
    int64_t dims[kMaxDims] = {0, 0, 0, 0};

    Shape() = default;
    Shape(std::initializer_list<int64_t> d);
    int64_t numel() const;
    int64_t operator[](int i) const { return dims[i]; }
    bool operator==(const Shape& o) const;
    bool operator!=(const Shape& o) const { return !(*this == o); }
    std::string str() const;  // "(4096, 1024)"
};

struct TensorView {
    void* data = nullptr;
    DType dtype = DType::f32;
    Shape shape;

    int64_t numel() const { return shape.numel(); }
    size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
    float* f32() const { return static_cast<float*>(data); }
    bf16* bf() const { return static_cast<bf16*>(data); }
    int32_t* i32() const { return static_cast<int32_t*>(data); }
};

// Throws "[op] expected <what> of shape (..), got (..)" unless t has exactly this shape and dtype.
void check_tensor(const char* op, const char* what, const TensorView& t, const Shape& expected,
                  DType dtype = DType::f32);

// Owning, 64-byte aligned, zero-initialised buffer for one tensor.
class Buffer {
public:
    Buffer() = default;
    Buffer(DType dtype, Shape shape);
    ~Buffer();
    Buffer(Buffer&& o) noexcept;
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    TensorView view() const { return view_; }
    float* f32() const { return view_.f32(); }
    bf16* bf() const { return view_.bf(); }
    int64_t numel() const { return view_.numel(); }
    const Shape& shape() const { return view_.shape; }

private:
    TensorView view_;
};

}  // namespace moe
