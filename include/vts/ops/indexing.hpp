#pragma once
// Concatenation and row indexing.
//   concat({a, b, ...}, axis): shapes equal except along axis. Backward slices the gradient.
//   index_select(x [N, ...], rows): out[i] = x[rows[i]]. Backward scatter-adds into zeros
//     (repeated rows accumulate; on CUDA without atomics, each input row summing the rows that
//     took it in order, so the result is deterministic).
//   index_copy_(bank [N, ...], rows, src [len(rows), ...]): in-place row writes outside the
//     graph, for memory banks. Later rows win when an index repeats.
#include <cstring>
#include <vector>

#include "vts/core/tensor.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/reduce.hpp"  // gather_rows
#endif

namespace vts {

template <class T, class D>
Tensor<T, D> concat(const std::vector<Tensor<T, D>>& parts, int axis) {
  VTS_CHECK(!parts.empty(), "concat: no tensors given");
  const Shape& first = parts[0].shape();
  axis = first.normalize_axis(axis);
  Shape out_shape = first;
  int64_t total = 0;
  for (const auto& t : parts) {
    bool ok = t.ndim() == first.ndim();
    for (int i = 0; ok && i < first.ndim(); ++i)
      if (i != axis && t.shape()[i] != first[i]) ok = false;
    VTS_CHECK_SHAPE(ok, "concat along axis ", axis, ": shape ", t.shape().str(), " does not match ", first.str());
    total += t.shape()[axis];
  }
  out_shape[axis] = total;
  Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (const auto& t : parts) {
    const int64_t len = t.shape()[axis];
    out.detach().slice(axis, at, at + len).copy_(t);
    sizes.push_back(len);
    at += len;
  }
  // Record with every part as an input.
  if (!grad_enabled()) return out;
  bool any = false;
  for (const auto& t : parts) any = any || t.requires_grad();
  if (!any) return out;
  auto node = std::make_shared<Node<T, D>>();
  node->name = "concat";
  for (const auto& t : parts) node->inputs.push_back(t.requires_grad() ? t.impl_ptr() : nullptr);
  node->backward = [sizes, axis](const Tensor<T, D>& g) {
    std::vector<Tensor<T, D>> grads;
    int64_t start = 0;
    for (int64_t len : sizes) {
      grads.push_back(g.slice(axis, start, start + len));
      start += len;
    }
    return grads;
  };
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
  return out;
}

namespace detail {
inline void check_rows(const std::vector<int64_t>& rows, int64_t n, const char* op) {
  for (size_t i = 0; i < rows.size(); ++i)
    VTS_CHECK(rows[i] >= 0 && rows[i] < n, op, ": row index ", rows[i], " at position ", i, " is outside [0, ", n,
              ")");
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> index_select(const Tensor<T, D>& x, const std::vector<int64_t>& rows) {
  VTS_CHECK_SHAPE(x.ndim() >= 1, "index_select needs at least 1-D input");
  detail::check_rows(rows, x.size(0), "index_select");
  Tensor<T, D> xc = x.contiguous_nograd();
  const int64_t width = x.numel() / std::max<int64_t>(x.size(0), 1);
  Shape out_shape = x.shape();
  out_shape[0] = static_cast<int64_t>(rows.size());
  Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
  if constexpr (is_cpu_v<D>) {
    for (size_t i = 0; i < rows.size(); ++i)
      std::memcpy(out.data() + static_cast<int64_t>(i) * width, xc.data() + rows[i] * width, sizeof(T) * width);
    return record(out, "index_select", {&x}, [rows, width, in_shape = x.shape()](const Tensor<T, D>& g) {
      Tensor<T, D> gc = g.contiguous_nograd();
      Tensor<T, D> dx = Tensor<T, D>::zeros(in_shape);
      for (size_t i = 0; i < rows.size(); ++i) {
        T* dst = dx.data() + rows[i] * width;
        const T* src = gc.data() + static_cast<int64_t>(i) * width;
        for (int64_t j = 0; j < width; ++j) dst[j] += src[j];
      }
      return std::vector<Tensor<T, D>>{dx};
    });
  } else {
    const auto dev_rows = Tensor<int64_t, D>::from_vector(rows);
    gather_rows(D{}, xc.data(), dev_rows.data(), static_cast<int64_t>(rows.size()), width, out.data());
    return record(out, "index_select", {&x}, [rows, width, in_shape = x.shape()](const Tensor<T, D>& g) {
      // The row list as CSR, on the host: for input row r, the output rows that took it, in order.
      const int64_t n_in = in_shape[0];
      std::vector<int64_t> first(static_cast<size_t>(n_in + 1), 0), order(rows.size());
      for (int64_t r : rows) ++first[static_cast<size_t>(r + 1)];
      for (int64_t r = 0; r < n_in; ++r) first[static_cast<size_t>(r + 1)] += first[static_cast<size_t>(r)];
      std::vector<int64_t> fill(first.begin(), first.end() - 1);
      for (size_t k = 0; k < rows.size(); ++k) order[static_cast<size_t>(fill[static_cast<size_t>(rows[k])]++)] = static_cast<int64_t>(k);
      const auto dev_first = Tensor<int64_t, D>::from_vector(first), dev_order = Tensor<int64_t, D>::from_vector(order);
      Tensor<T, D> gc = g.contiguous_nograd();
      Tensor<T, D> dx = Tensor<T, D>::empty(in_shape);
      gather_rows_backward(D{}, gc.data(), dev_first.data(), dev_order.data(), n_in, width, dx.data());
      return std::vector<Tensor<T, D>>{dx};
    });
  }
}

template <class T, class D>
void index_copy_(Tensor<T, D>& bank, const std::vector<int64_t>& rows, const Tensor<T, D>& src) {
  VTS_CHECK_SHAPE(bank.is_contiguous(), "index_copy_: the bank must be contiguous");
  VTS_CHECK_SHAPE(src.ndim() == bank.ndim() && src.size(0) == static_cast<int64_t>(rows.size()),
                  "index_copy_: source shape ", src.shape().str(), " does not hold ", rows.size(), " rows of bank ",
                  bank.shape().str());
  for (int i = 1; i < bank.ndim(); ++i)
    VTS_CHECK_SHAPE(src.shape()[i] == bank.shape()[i], "index_copy_: source rows ", src.shape().str(),
                    " differ from bank rows ", bank.shape().str());
  detail::check_rows(rows, bank.size(0), "index_copy_");
  const int64_t width = bank.numel() / std::max<int64_t>(bank.size(0), 1);
  Tensor<T, D> sc = src.contiguous_nograd();
  bank.bump_version();
  for (size_t i = 0; i < rows.size(); ++i) {
    T* dst = bank.data() + rows[i] * width;
    const T* from = sc.data() + static_cast<int64_t>(i) * width;
    if constexpr (is_cpu_v<D>) {
      copy_from_host(D{}, dst, from, sizeof(T) * static_cast<size_t>(width));
    } else {
      copy_device(D{}, dst, from, sizeof(T) * static_cast<size_t>(width));  // both on the device
    }
  }
}

}  // namespace vts
