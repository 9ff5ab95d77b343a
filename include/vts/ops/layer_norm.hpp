#pragma once
// layer_norm(x [..., n], weight [n], bias [n], eps) over the last axis, fused: one pass forward
// saving the per-row mean and 1/std, one pass backward producing dx, dweight and dbias.
#include <vector>

#include "vts/backend/cpu/rowwise.hpp"
#include "vts/core/tensor.hpp"

namespace vts {

template <class T, class D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, T eps) {
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  VTS_CHECK_SHAPE(weight.shape() == Shape{n} && bias.shape() == Shape{n}, "layer_norm: weight ",
                  weight.shape().str(), " and bias ", bias.shape().str(), " must both be [", n,
                  "] for input ", x.shape().str());
  Tensor<T, D> xc = x.contiguous_nograd(), wc = weight.contiguous_nograd(), bc = bias.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  Tensor<T, D> mu = Tensor<T, D>::empty(Shape{rows}), rstd = Tensor<T, D>::empty(Shape{rows});
  layer_norm_rows(D{}, xc.data(), wc.data(), bc.data(), y.data(), mu.data(), rstd.data(), rows, n, eps);
  return record(y, "layer_norm", {&x, &weight, &bias},
                [xc, wc, mu, rstd, rows, n, gx = needs_grad(x), gw = needs_grad(weight),
                 gb = needs_grad(bias)](const Tensor<T, D>& g) {
                  Tensor<T, D> gc = g.contiguous_nograd();
                  Tensor<T, D> dx = gx ? Tensor<T, D>::empty(xc.shape()) : Tensor<T, D>();
                  Tensor<T, D> dw = Tensor<T, D>::empty(Shape{n}), db = Tensor<T, D>::empty(Shape{n});
                  layer_norm_rows_backward(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(),
                                           gx ? dx.data() : nullptr, dw.data(), db.data(), rows, n);
                  return std::vector<Tensor<T, D>>{dx, gw ? dw : Tensor<T, D>(), gb ? db : Tensor<T, D>()};
                });
}

}  // namespace vts
