#pragma once
// layer_norm(x [..., n], weight [n], bias [n], eps) over the last axis, fused: one pass forward
// saving the per-row mean and 1/std, one pass backward producing dx, dweight and dbias. The saved
// statistics are acc_t<T> (fp32 for bf16, as the CUDA kernels take them). add_layer_norm fuses the
// residual add in front of it.
#include <vector>

#include "vts/autograd/pending.hpp"
#include "vts/backend/cpu/rowwise.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/cast.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/layer_norm.hpp"
#endif

namespace vts {

namespace detail {

inline void check_layer_norm_params(const Shape& x, const Shape& weight, const Shape& bias, int64_t n) {
  VTS_CHECK_SHAPE(weight == Shape{n} && bias == Shape{n}, "layer_norm: weight ", weight.str(), " and bias ",
                  bias.str(), " must both be [", n, "] for input ", x.str());
}

// Records y = layer_norm(x) whose forward is already computed: xc is x's contiguous data (x itself,
// or the stored sum of the fused residual variant), mu and rstd its row statistics.
template <class T, class D>
Tensor<T, D> record_layer_norm(Tensor<T, D> y, const Tensor<T, D>& x, const Tensor<T, D>& weight,
                               const Tensor<T, D>& bias, Tensor<T, D> xc, Tensor<T, D> wc, Tensor<acc_t<T>, D> mu,
                               Tensor<acc_t<T>, D> rstd) {
  using A = acc_t<T>;
  const int64_t n = xc.size(-1), rows = xc.numel() / std::max<int64_t>(n, 1);
  return record(y, "layer_norm", {&x, &weight, &bias},
                [saved_x = Saved(xc), saved_w = Saved(wc), mu, rstd, rows, n, gx = needs_grad(x),
                 gw = needs_grad(weight), gb = needs_grad(bias)](const Tensor<T, D>& g) {
                  const Tensor<T, D>& xc = saved_x.get();
                  const Tensor<T, D>& wc = saved_w.get();
                  Tensor<T, D> gc = g.contiguous_nograd();
                  // A backend that rounds dw, db to T itself (CUDA's bf16) saves two conversions.
                  constexpr bool kTypedParamGrads = requires(T* p) {
                    layer_norm_rows_backward(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(), p, p, p,
                                             rows, n);
                  };
                  if constexpr (std::is_same_v<A, T> || kTypedParamGrads) {
                    Tensor<T, D> dw = gw ? Tensor<T, D>::empty(Shape{n}) : Tensor<T, D>();
                    Tensor<T, D> db = gb ? Tensor<T, D>::empty(Shape{n}) : Tensor<T, D>();
                    T* const dw_out = gw ? dw.data() : nullptr;
                    T* const db_out = gb ? db.data() : nullptr;
                    // x used again downstream (the residual stream) already has a gradient waiting:
                    // a backend that can (CUDA) adds it in the dx pass, in place when nobody else
                    // holds it, instead of the engine summing the two afterwards (autograd/pending.hpp).
                    constexpr bool kAddsPending = requires(const T* in, T* out) {
                      layer_norm_rows_backward_add(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(), in,
                                                   out, out, out, rows, n);
                    };
                    if constexpr (kAddsPending) {
                      Tensor<T, D>* waiting = gx ? pending_grad<T, D>(0) : nullptr;
                      if (waiting != nullptr && waiting->is_contiguous() && waiting->shape() == xc.shape()) {
                        Tensor<T, D> sum = exclusively_owned(*waiting) ? *waiting : Tensor<T, D>::empty(xc.shape());
                        layer_norm_rows_backward_add(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(),
                                                     waiting->data(), sum.data(), dw_out, db_out, rows, n);
                        absorb_pending_grad<T, D>(0);
                        return std::vector<Tensor<T, D>>{sum, dw, db};
                      }
                    }
                    Tensor<T, D> dx = gx ? Tensor<T, D>::empty(xc.shape()) : Tensor<T, D>();
                    layer_norm_rows_backward(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(),
                                             gx ? dx.data() : nullptr, dw_out, db_out, rows, n);
                    return std::vector<Tensor<T, D>>{dx, dw, db};
                  } else {
                    Tensor<T, D> dx = gx ? Tensor<T, D>::empty(xc.shape()) : Tensor<T, D>();
                    Tensor<A, D> dw = Tensor<A, D>::empty(Shape{n}), db = Tensor<A, D>::empty(Shape{n});
                    layer_norm_rows_backward(D{}, xc.data(), wc.data(), mu.data(), rstd.data(), gc.data(),
                                             gx ? dx.data() : nullptr, dw.data(), db.data(), rows, n);
                    return std::vector<Tensor<T, D>>{dx, gw ? cast<T>(dw) : Tensor<T, D>(),
                                                     gb ? cast<T>(db) : Tensor<T, D>()};
                  }
                });
}

}  // namespace detail

template <class T, class D>
Tensor<T, D> layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& weight, const Tensor<T, D>& bias, T eps) {
  using A = acc_t<T>;
  VTS_CHECK_SHAPE(x.ndim() > 0, "layer_norm: expected [..., n], found a 0-d tensor");
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  detail::check_layer_norm_params(x.shape(), weight.shape(), bias.shape(), n);
  Tensor<T, D> xc = x.contiguous_nograd(), wc = weight.contiguous_nograd(), bc = bias.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  Tensor<A, D> mu = Tensor<A, D>::empty(Shape{rows}), rstd = Tensor<A, D>::empty(Shape{rows});
  layer_norm_rows(D{}, xc.data(), wc.data(), bc.data(), y.data(), mu.data(), rstd.data(), rows, n,
                  static_cast<A>(eps));
  return detail::record_layer_norm(y, x, weight, bias, xc, wc, mu, rstd);
}

// The pre-norm transformer block's residual step: sum = x + residual, normed = layer_norm(sum).
template <class T, class D>
struct AddLayerNorm {
  Tensor<T, D> sum, normed;
};

// add_layer_norm(x, residual, weight, bias, eps): the same values and gradients as
//   sum = x + residual;  normed = layer_norm(sum, weight, bias, eps)
// (bit for bit on the CPU), with one pass over the rows instead of two: the sum is normalised while
// it is in registers or cache rather than written and read back. x and residual have equal shapes.
// sum is recorded as an add and normed as a layer_norm of it, so gradients reaching either output
// flow as they would through the separate ops.
template <class T, class D>
AddLayerNorm<T, D> add_layer_norm(const Tensor<T, D>& x, const Tensor<T, D>& residual, const Tensor<T, D>& weight,
                                  const Tensor<T, D>& bias, T eps) {
  using A = acc_t<T>;
  VTS_CHECK_SHAPE(x.shape() == residual.shape(), "add_layer_norm: x ", x.shape().str(), " and residual ",
                  residual.shape().str(), " must have the same shape");
  VTS_CHECK_SHAPE(x.ndim() > 0, "add_layer_norm: expected [..., n], found a 0-d tensor");
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  detail::check_layer_norm_params(x.shape(), weight.shape(), bias.shape(), n);
  Tensor<T, D> xc = x.contiguous_nograd(), rc = residual.contiguous_nograd();
  Tensor<T, D> wc = weight.contiguous_nograd(), bc = bias.contiguous_nograd();
  Tensor<T, D> sum = Tensor<T, D>::empty(x.shape()), y = Tensor<T, D>::empty(x.shape());
  Tensor<A, D> mu = Tensor<A, D>::empty(Shape{rows}), rstd = Tensor<A, D>::empty(Shape{rows});
  layer_norm_residual_rows(D{}, xc.data(), rc.data(), sum.data(), wc.data(), bc.data(), y.data(), mu.data(),
                           rstd.data(), rows, n, static_cast<A>(eps));
  // The LayerNorm's backward reads the stored sum through a detached handle (data, not the graph).
  Tensor<T, D> sum_data = sum.detach();
  Tensor<T, D> sum_node = record(sum, "add", {&x, &residual}, [](const Tensor<T, D>& g) {
    return std::vector<Tensor<T, D>>{g, g};
  });
  Tensor<T, D> normed = detail::record_layer_norm(y, sum_node, weight, bias, sum_data, wc, mu, rstd);
  return {sum_node, normed};
}

}  // namespace vts
