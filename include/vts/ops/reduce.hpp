#pragma once
// Reductions.
//   sum(x) -> []            sum(x, axes, keepdim) -> x's shape without (or with 1 at) the axes;
//                           an empty list reduces nothing (NumPy's axis=()), where PyTorch's
//                           dim=[] reduces everything: sum(x) is the whole sum
//   mean(...) the same divided by the count; max(x[, axis, keepdim]) saves the arg-max position
//   sum_to(g, shape) sums a broadcast gradient back to an input's shape (the backward of
//   broadcasting).
// Backward: sum and mean broadcast the gradient back; max routes it to the first maximal element.
#include <algorithm>
#include <vector>

#include "vts/backend/cpu/reduce.hpp"
#include "vts/core/tensor.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/reduce.hpp"
#endif

namespace vts {

namespace detail {

// Reduce a contiguous tensor over a sorted, duplicate-free axis set, keeping size-1 dims.
template <class T, class D>
Tensor<T, D> sum_keepdim_nograd(const Tensor<T, D>& x, std::vector<int> axes) {
  Tensor<T, D> cur = x.contiguous_nograd();
  Shape shape = cur.shape();
  // Reduce the innermost run of adjacent axes first, then the next, each as one [A, R, C] pass.
  while (!axes.empty()) {
    int hi = axes.back(), lo = hi;
    axes.pop_back();
    while (!axes.empty() && axes.back() == lo - 1) {
      lo = axes.back();
      axes.pop_back();
    }
    int64_t A = 1, R = 1, C = 1;
    for (int i = 0; i < lo; ++i) A *= shape[i];
    for (int i = lo; i <= hi; ++i) R *= shape[i];
    for (int i = hi + 1; i < shape.ndim(); ++i) C *= shape[i];
    for (int i = lo; i <= hi; ++i) shape[i] = 1;
    if (R == 1) {
      cur = cur.reshape(shape).detach();
      continue;
    }
    Tensor<T, D> next = Tensor<T, D>::empty(shape);
    sum_middle(D{}, cur.data(), A, R, C, next.data());
    cur = next;
  }
  return cur;
}

inline std::vector<int> normalize_axes(const Shape& shape, std::vector<int> axes) {
  for (int& a : axes) a = shape.normalize_axis(a);
  std::sort(axes.begin(), axes.end());
  VTS_CHECK_SHAPE(std::adjacent_find(axes.begin(), axes.end()) == axes.end(), "repeated axis in reduction over ",
                  shape.str());
  return axes;
}

inline Shape drop_axes(const Shape& shape, const std::vector<int>& axes) {
  std::vector<int64_t> dims;
  for (int i = 0; i < shape.ndim(); ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) dims.push_back(shape[i]);
  return Shape(std::move(dims));
}

inline Shape keep_axes_as_one(const Shape& shape, const std::vector<int>& axes) {
  Shape s = shape;
  for (int a : axes) s[a] = 1;
  return s;
}

}  // namespace detail

// Sums a gradient of a broadcast result back to `shape` (no-op when the shapes already agree).
template <class T, class D>
Tensor<T, D> sum_to(const Tensor<T, D>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int lead = g.ndim() - shape.ndim();
  VTS_CHECK_SHAPE(lead >= 0, "sum_to: cannot reduce shape ", g.shape().str(), " to ", shape.str());
  std::vector<int> axes;
  for (int i = 0; i < g.ndim(); ++i) {
    if (i < lead) {
      axes.push_back(i);
    } else if (shape[i - lead] == 1 && g.shape()[i] != 1) {
      axes.push_back(i);
    } else {
      VTS_CHECK_SHAPE(shape[i - lead] == g.shape()[i], "sum_to: cannot reduce shape ", g.shape().str(), " to ",
                      shape.str());
    }
  }
  NoGradGuard guard;
  return detail::sum_keepdim_nograd(g, axes).reshape(shape);
}

template <class T, class D>
Tensor<T, D> sum(const Tensor<T, D>& x, std::vector<int> axes, bool keepdim = false) {
  axes = detail::normalize_axes(x.shape(), std::move(axes));
  const Shape kept = detail::keep_axes_as_one(x.shape(), axes);
  const Shape out_shape = keepdim ? kept : detail::drop_axes(x.shape(), axes);
  Tensor<T, D> out;
  {
    NoGradGuard guard;
    out = detail::sum_keepdim_nograd(x, axes).reshape(out_shape).detach();
  }
  return record(out, "sum", {&x}, [kept, in_shape = x.shape()](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{g.reshape(kept).expand(in_shape)};
  });
}

template <class T, class D>
Tensor<T, D> sum(const Tensor<T, D>& x) {
  std::vector<int> all(static_cast<size_t>(x.ndim()));
  for (int i = 0; i < x.ndim(); ++i) all[static_cast<size_t>(i)] = i;
  return sum(x, all, false);
}

template <class T, class D>
Tensor<T, D> mean(const Tensor<T, D>& x, std::vector<int> axes, bool keepdim = false);
template <class T, class D>
Tensor<T, D> mean(const Tensor<T, D>& x);

// Max over one axis (or all elements). The gradient goes to the first maximal element of each
// reduced slice, a deterministic choice among ties.
template <class T, class D>
Tensor<T, D> max(const Tensor<T, D>& x, int axis, bool keepdim = false) {
  axis = x.shape().normalize_axis(axis);
  const Shape in_shape = x.shape();
  // Move the axis last so each reduced slice is a contiguous row.
  std::vector<int> perm;
  for (int i = 0; i < x.ndim(); ++i)
    if (i != axis) perm.push_back(i);
  perm.push_back(axis);
  Tensor<T, D> rows;
  {
    NoGradGuard guard;
    rows = x.permute(perm).contiguous_nograd();
  }
  const int64_t R = in_shape[axis], A = in_shape.numel() / std::max<int64_t>(R, 1);
  VTS_CHECK_SHAPE(R > 0, "max over an empty axis of shape ", in_shape.str());
  Shape kept = in_shape;
  kept[axis] = 1;
  const Shape out_shape = keepdim ? kept : detail::drop_axes(in_shape, {axis});
  Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
  auto where = std::make_shared<Storage<D>>(static_cast<size_t>(A) * sizeof(int64_t));
  max_rows(D{}, rows.data(), A, R, out.data(), static_cast<int64_t*>(where->data()));
  return record(out, "max", {&x}, [=](const Tensor<T, D>& g) {
    Shape permuted_shape;
    for (int p : perm) permuted_shape.push_back(in_shape[p]);
    Tensor<T, D> gc = g.contiguous_nograd();
    Tensor<T, D> dx_rows = Tensor<T, D>::empty(permuted_shape);
    scatter_rows_at(D{}, gc.data(), static_cast<const int64_t*>(where->data()), A, R, dx_rows.data());
    std::vector<int> inverse(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int>(i);
    return std::vector<Tensor<T, D>>{dx_rows.permute(inverse)};
  });
}

template <class T, class D>
Tensor<T, D> max(const Tensor<T, D>& x) {
  return max(x.reshape(Shape{x.numel()}), 0, false);
}

}  // namespace vts
