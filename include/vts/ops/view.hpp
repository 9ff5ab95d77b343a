#pragma once
// Views: reshape, permute/transpose, slice/select, expand, (un)squeeze — no copies unless a
// reshape of a non-contiguous tensor needs one. Backward maps the gradient back to the input's
// shape: reshape back, inverse permutation, scatter into a zero tensor, or sum over broadcast axes.
#include <numeric>
#include <vector>

#include "vts/core/tensor.hpp"
#include "vts/ops/reduce.hpp"

namespace vts {

namespace detail {
template <class T, class D>
Tensor<T, D> make_view(const Tensor<T, D>& base, Shape shape, Strides strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl<T, D>>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  return Tensor<T, D>(std::move(impl));
}

inline Shape infer_reshape(const Shape& from, const Shape& to) {
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < to.ndim(); ++i) {
    if (to[i] == -1) {
      VTS_CHECK_SHAPE(infer < 0, "reshape: more than one -1 in ", to.str());
      infer = i;
    } else {
      VTS_CHECK_SHAPE(to[i] >= 0, "reshape: negative size in ", to.str());
      known *= to[i];
    }
  }
  Shape out = to;
  if (infer >= 0) {
    VTS_CHECK_SHAPE(known > 0 && from.numel() % known == 0, "reshape: cannot reshape ", from.str(), " (",
                    from.numel(), " elements) into ", to.str());
    out[infer] = from.numel() / known;
  }
  VTS_CHECK_SHAPE(out.numel() == from.numel(), "reshape: cannot reshape ", from.str(), " (", from.numel(),
                  " elements) into ", to.str(), " (", out.numel(), " elements)");
  return out;
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> Tensor<T, D>::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = clone_nograd();
  return record(out, "contiguous", {this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::reshape(const Shape& to) const {
  const Shape shape_out = detail::infer_reshape(shape(), to);
  if (shape_out == shape()) return *this;
  Tensor src = is_contiguous() ? *this : clone_nograd();
  Tensor out = detail::make_view(src, shape_out, contiguous_strides(shape_out), src.offset());
  return record(out, "reshape", {this}, [in_shape = shape()](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::flatten(int start_axis, int end_axis) const {
  if (ndim() == 0) return reshape(Shape{1});
  start_axis = shape().normalize_axis(start_axis);
  end_axis = shape().normalize_axis(end_axis);
  // Reversed axes merge nothing: the loop below would silently insert a size-1 dim instead.
  VTS_CHECK_SHAPE(start_axis <= end_axis, "flatten: start axis ", start_axis, " comes after end axis ", end_axis,
                  " for shape ", shape().str());
  std::vector<int64_t> dims;
  for (int i = 0; i < start_axis; ++i) dims.push_back(shape()[i]);
  int64_t merged = 1;
  for (int i = start_axis; i <= end_axis; ++i) merged *= shape()[i];
  dims.push_back(merged);
  for (int i = end_axis + 1; i < ndim(); ++i) dims.push_back(shape()[i]);
  return reshape(Shape(dims));
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::permute(const std::vector<int>& axes) const {
  VTS_CHECK_SHAPE(static_cast<int>(axes.size()) == ndim(), "permute: ", axes.size(), " axes for shape ",
                  shape().str());
  std::vector<int> norm(axes.size());
  std::vector<bool> seen(axes.size(), false);
  Shape s;
  Strides st;
  for (size_t i = 0; i < axes.size(); ++i) {
    norm[i] = shape().normalize_axis(axes[i]);
    VTS_CHECK_SHAPE(!seen[static_cast<size_t>(norm[i])], "permute: axis ", axes[i], " repeated");
    seen[static_cast<size_t>(norm[i])] = true;
    s.push_back(shape()[norm[i]]);
    st.push_back(strides()[static_cast<size_t>(norm[i])]);
  }
  Tensor out = detail::make_view(*this, s, st, offset());
  return record(out, "permute", {this}, [norm](const Tensor& g) {
    std::vector<int> inverse(norm.size());
    for (size_t i = 0; i < norm.size(); ++i) inverse[static_cast<size_t>(norm[i])] = static_cast<int>(i);
    return std::vector<Tensor>{g.permute(inverse)};
  });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::transpose(int a, int b) const {
  a = shape().normalize_axis(a);
  b = shape().normalize_axis(b);
  std::vector<int> axes(static_cast<size_t>(ndim()));
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[static_cast<size_t>(a)], axes[static_cast<size_t>(b)]);
  return permute(axes);
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::slice(int axis, int64_t start, int64_t end, int64_t step) const {
  axis = shape().normalize_axis(axis);
  const int64_t n = shape()[axis];
  VTS_CHECK_SHAPE(step > 0, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape();
  Strides st = strides();
  s[axis] = (end - start + step - 1) / step;
  st[static_cast<size_t>(axis)] *= step;
  Tensor out = detail::make_view(*this, s, st, offset() + start * strides()[static_cast<size_t>(axis)]);
  return record(out, "slice", {this}, [in_shape = shape(), axis, start, end, step](const Tensor& g) {
    Tensor dx = Tensor::zeros(in_shape);
    Tensor window = dx.detach().slice(axis, start, end, step);
    window.copy_(g);
    return std::vector<Tensor>{dx};
  });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::select(int axis, int64_t index) const {
  axis = shape().normalize_axis(axis);
  const int64_t n = shape()[axis];
  VTS_CHECK_SHAPE(index >= -n && index < n, "select: index ", index, " out of range for dimension ", axis,
                  " of shape ", shape().str());
  if (index < 0) index += n;
  return slice(axis, index, index + 1).squeeze(axis);
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::expand(const Shape& to) const {
  VTS_CHECK_SHAPE(to.ndim() >= ndim(), "expand: cannot expand shape ", shape().str(), " to ", to.str());
  const int lead = to.ndim() - ndim();
  Strides st(static_cast<size_t>(to.ndim()), 0);
  Shape out_shape = to;
  for (int i = 0; i < to.ndim(); ++i) {
    if (i < lead) {
      // A new leading axis has no existing size for -1 to keep.
      VTS_CHECK_SHAPE(to[i] >= 0, "expand: cannot expand shape ", shape().str(), " to ", to.str(),
                      " (-1 in a new leading dimension)");
      continue;
    }
    const int64_t have = shape()[i - lead];
    if (to[i] == -1) out_shape[i] = have;
    VTS_CHECK_SHAPE(have == out_shape[i] || have == 1, "expand: cannot expand shape ", shape().str(), " to ",
                    to.str());
    st[static_cast<size_t>(i)] = have == out_shape[i] ? strides()[static_cast<size_t>(i - lead)] : 0;
  }
  if (out_shape == shape()) return *this;
  Tensor out = detail::make_view(*this, out_shape, st, offset());
  return record(out, "expand", {this}, [in_shape = shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, in_shape)};
  });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::unsqueeze(int axis) const {
  const int n = ndim() + 1;
  if (axis < 0) axis += n;
  VTS_CHECK_SHAPE(axis >= 0 && axis < n, "unsqueeze: axis out of range for shape ", shape().str());
  Shape s = shape();
  Strides st = strides();
  const int64_t stride = axis < ndim() ? strides()[static_cast<size_t>(axis)] * shape()[axis] : 1;
  s.dims().insert(s.dims().begin() + axis, 1);
  st.insert(st.begin() + axis, stride);
  Tensor out = detail::make_view(*this, s, st, offset());
  return record(out, "unsqueeze", {this}, [in_shape = shape()](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
}

template <class T, class D>
Tensor<T, D> Tensor<T, D>::squeeze(int axis) const {
  axis = shape().normalize_axis(axis);
  VTS_CHECK_SHAPE(shape()[axis] == 1, "squeeze: dimension ", axis, " of shape ", shape().str(), " is not 1");
  Shape s = shape();
  Strides st = strides();
  s.dims().erase(s.dims().begin() + axis);
  st.erase(st.begin() + axis);
  Tensor out = detail::make_view(*this, s, st, offset());
  return record(out, "squeeze", {this}, [in_shape = shape()](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
}

}  // namespace vts
