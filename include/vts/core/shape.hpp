#pragma once
// Shapes and strides: small integer vectors with the arithmetic every op needs (numel,
// contiguous strides, broadcasting, axis normalisation).
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "vts/core/error.hpp"

namespace vts {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int ndim() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  // Python-style access: -1 is the last dimension.
  int64_t at(int i) const { return dims_[static_cast<size_t>(normalize_axis(i))]; }
  int normalize_axis(int axis) const {
    const int n = ndim();
    const int a = axis < 0 ? axis + n : axis;
    VTS_CHECK_SHAPE(a >= 0 && a < n, "axis ", axis, " is out of range for shape ", str());
    return a;
  }

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims_) n *= d;
    return n;
  }
  const std::vector<int64_t>& dims() const { return dims_; }
  std::vector<int64_t>& dims() { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }
  void push_back(int64_t d) { dims_.push_back(d); }

  bool operator==(const Shape& other) const = default;

  std::string str() const {
    std::string s = "[";
    for (size_t i = 0; i < dims_.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

 private:
  std::vector<int64_t> dims_;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

using Strides = std::vector<int64_t>;

inline Strides contiguous_strides(const Shape& shape) {
  Strides st(static_cast<size_t>(shape.ndim()));
  int64_t acc = 1;
  for (int i = shape.ndim() - 1; i >= 0; --i) {
    st[static_cast<size_t>(i)] = acc;
    acc *= shape[i];
  }
  return st;
}

namespace detail {
// Size of dimension i of `s` aligned from the right to n dimensions (1 where s has none).
inline int64_t aligned_dim(const Shape& s, int i, int n) {
  const int j = s.ndim() - n + i;
  return j >= 0 ? s[j] : 1;
}
}  // namespace detail

// NumPy broadcasting: align from the right; sizes must match or be 1. nullopt when they do not,
// with the first dimension that does not in *failed_dim when given.
inline std::optional<Shape> try_broadcast_shapes(const Shape& a, const Shape& b, int* failed_dim = nullptr) {
  const int n = std::max(a.ndim(), b.ndim());
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t da = detail::aligned_dim(a, i, n), db = detail::aligned_dim(b, i, n);
    if (da != db && da != 1 && db != 1) {
      if (failed_dim) *failed_dim = i;
      return std::nullopt;
    }
    out[static_cast<size_t>(i)] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

// The same, throwing. `op`, when given, starts the error message, so a failed `x * y` deep in a
// model names the op that failed.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = nullptr) {
  int i = 0;
  std::optional<Shape> out = try_broadcast_shapes(a, b, &i);
  const int n = std::max(a.ndim(), b.ndim());
  VTS_CHECK_SHAPE(out.has_value(), op ? op : "", op ? ": " : "", "cannot broadcast shapes ", a.str(), " and ",
                  b.str(), ": dimension ", i, " is ", detail::aligned_dim(a, i, n), " vs ",
                  detail::aligned_dim(b, i, n));
  return std::move(*out);
}

}  // namespace vts
