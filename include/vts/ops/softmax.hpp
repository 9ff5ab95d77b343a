#pragma once
// Softmax family and the classification losses built on it.
//   softmax(x, axis) / log_softmax(x, axis): same shape; saves the output.
//   cross_entropy(logits [B, C], targets: B class indices) -> [] mean over the batch, fused with
//     its own backward (softmax − one-hot)/B; saves the softmax.
//   binary_cross_entropy(p, t) -> [] mean of −[t·log p + (1−t)·log(1−p)] with each log clamped at
//     −100 and PyTorch's backward (p − t)/max(p(1−p), 1e-12); saves p and t.
#include <cmath>
#include <vector>

#include "vts/backend/cpu/rowwise.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"

namespace vts {

namespace detail {
template <class T, class D>
Tensor<T, D> softmax_impl(const Tensor<T, D>& x, int axis, bool log_y) {
  axis = x.shape().normalize_axis(axis);
  if (axis != x.ndim() - 1) {
    // Softmax over another axis: move it last, compute, move it back (views; one copy).
    return softmax_impl(x.transpose(axis, -1), -1, log_y).transpose(axis, -1);
  }
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  Tensor<T, D> xc = x.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  softmax_rows(D{}, xc.data(), y.data(), rows, n, log_y);
  return record(y, log_y ? "log_softmax" : "softmax", {&x}, [yd = y.detach(), rows, n, log_y](const Tensor<T, D>& g) {
    Tensor<T, D> gc = g.contiguous_nograd();
    Tensor<T, D> dx = Tensor<T, D>::empty(yd.shape());
    softmax_rows_backward(D{}, yd.data(), gc.data(), dx.data(), rows, n, log_y);
    return std::vector<Tensor<T, D>>{dx};
  });
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> softmax(const Tensor<T, D>& x, int axis = -1) {
  return detail::softmax_impl(x, axis, false);
}
template <class T, class D>
Tensor<T, D> log_softmax(const Tensor<T, D>& x, int axis = -1) {
  return detail::softmax_impl(x, axis, true);
}

template <class T, class D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const std::vector<int64_t>& targets) {
  static_assert(is_cpu_v<D>, "cross_entropy: CUDA path lives in the CUDA backend");
  VTS_CHECK_SHAPE(logits.ndim() == 2, "cross_entropy: logits must be [batch, classes], found ",
                  logits.shape().str());
  const int64_t B = logits.size(0), C = logits.size(1);
  VTS_CHECK_SHAPE(static_cast<int64_t>(targets.size()) == B, "cross_entropy: ", targets.size(),
                  " targets for a batch of ", B);
  Tensor<T, D> xc = logits.contiguous_nograd();
  Tensor<T, D> p = Tensor<T, D>::empty(logits.shape());
  softmax_rows(D{}, xc.data(), p.data(), B, C, true);  // log-probabilities
  T loss = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t t = targets[static_cast<size_t>(i)];
    VTS_CHECK(t >= 0 && t < C, "cross_entropy: target ", t, " at row ", i, " is outside [0, ", C, ")");
    loss -= p.data()[i * C + t];
  }
  Tensor<T, D> out = Tensor<T, D>::scalar(loss / T(B));
  return record(out, "cross_entropy", {&logits}, [p, targets, B, C](const Tensor<T, D>& g) {
    const T scale = g.item() / T(B);
    Tensor<T, D> dx = Tensor<T, D>::empty(Shape{B, C});
    const T* lp = p.data();
    T* d = dx.data();
    for (int64_t i = 0; i < B * C; ++i) d[i] = std::exp(lp[i]) * scale;
    for (int64_t i = 0; i < B; ++i) d[i * C + targets[static_cast<size_t>(i)]] -= scale;
    return std::vector<Tensor<T, D>>{dx};
  });
}

template <class T, class D>
Tensor<T, D> binary_cross_entropy(const Tensor<T, D>& p, const Tensor<T, D>& target) {
  VTS_CHECK_SHAPE(p.shape() == target.shape(), "binary_cross_entropy: input shape ", p.shape().str(),
                  " differs from target shape ", target.shape().str());
  const int64_t n = p.numel();
  auto elementwise = map(p, target, [](T pv, T tv) {
    using std::log;
    const T lp = std::max(log(pv), T(-100)), l1p = std::max(log(T(1) - pv), T(-100));
    return -(tv * lp + (T(1) - tv) * l1p);
  });
  // `elementwise` is outside the graph, so this mean records nothing; the node below is the op.
  Tensor<T, D> out = mean(elementwise);
  return record(out, "binary_cross_entropy", {&p, &target},
                [pd = p.detach(), td = target.detach(), n](const Tensor<T, D>& g) {
                  const T scale = g.item() / T(n);
                  Tensor<T, D> dp = map(pd, td, [scale](T pv, T tv) {
                    return scale * (pv - tv) / std::max((T(1) - pv) * pv, T(1e-12));
                  });
                  return std::vector<Tensor<T, D>>{dp, Tensor<T, D>()};  // targets are constants
                });
}

}  // namespace vts
