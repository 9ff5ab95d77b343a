#pragma once
// layer_norm(x [..., n], weight [n], bias [n], eps) over the last axis, fused: one pass forward
// saving the per-row mean and 1/std, one pass backward producing dx, dweight and dbias. The saved
// statistics are acc_t<T> (fp32 for bf16, as the CUDA kernels take them).
#include <vector>

#include "vts/backend/cpu/rowwise.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/cast.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/layer_norm.hpp"
#endif

namespace vts {

template <class T, class D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, T eps) {
  using A = acc_t<T>;
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  VTS_CHECK_SHAPE(weight.shape() == Shape{n} && bias.shape() == Shape{n}, "layer_norm: weight ",
                  weight.shape().str(), " and bias ", bias.shape().str(), " must both be [", n,
                  "] for input ", x.shape().str());
  Tensor<T, D> xc = x.contiguous_nograd(), wc = weight.contiguous_nograd(), bc = bias.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  Tensor<A, D> mu = Tensor<A, D>::empty(Shape{rows}), rstd = Tensor<A, D>::empty(Shape{rows});
  layer_norm_rows(D{}, xc.data(), wc.data(), bc.data(), y.data(), mu.data(), rstd.data(), rows, n,
                  static_cast<A>(eps));
  return record(y, "layer_norm", {&x, &weight, &bias},
                [xc, wc, mu, rstd, rows, n, gx = needs_grad(x), gw = needs_grad(weight),
                 gb = needs_grad(bias)](const Tensor<T, D>& g) {
                  Tensor<T, D> gc = g.contiguous_nograd();
                  Tensor<T, D> dx = gx ? Tensor<T, D>::empty(xc.shape()) : Tensor<T, D>();
                  Tensor<A, D> dw = Tensor<A, D>::empty(Shape{n}), db = Tensor<A, D>::empty(Shape{n});
                  layer_norm_rows_backward(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(),
                                           gx ? dx.data() : nullptr, dw.data(), db.data(), rows, n);
                  return std::vector<Tensor<T, D>>{dx, gw ? cast<T>(dw) : Tensor<T, D>(),
                                                   gb ? cast<T>(db) : Tensor<T, D>()};
                });
}

}  // namespace vts
