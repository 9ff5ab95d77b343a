#pragma once
// Matrix products.
//   matmul(a [..., M, K], b [..., K, N]) -> [..., M, N]; batch axes broadcast. Saves a and b.
//   linear(x [..., in], w [out, in], b [out] or undefined) -> [..., out] = x·wᵀ + b, the layer
//   primitive: one GEMM forward, two GEMMs and a column sum backward. Saves x and w.
// Transposed operands are passed to the GEMM as column-major views, never copied.
#include <optional>
#include <vector>

#include "vts/backend/cpu/gemm.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/reduce.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/gemm.hpp"
#endif

namespace vts {

namespace detail {

template <class T, class D>
MatrixRef<T> matrix_ref(const Tensor<T, D>& t, int64_t batch_offset) {
  const int n = t.ndim();
  return {t.data() + batch_offset, t.shape()[n - 2], t.shape()[n - 1], t.strides()[static_cast<size_t>(n - 2)],
          t.strides()[static_cast<size_t>(n - 1)]};
}

// A matrix view the GEMM can read directly (unit stride along rows or columns).
template <class T, class D>
Tensor<T, D> gemm_ready(const Tensor<T, D>& t) {
  const int n = t.ndim();
  const int64_t rs = t.strides()[static_cast<size_t>(n - 2)], cs = t.strides()[static_cast<size_t>(n - 1)];
  if (cs == 1 || rs == 1 || t.shape()[n - 1] == 1 || t.shape()[n - 2] == 1) return t;
  return t.clone_nograd();
}

// out[batch] = a[batch] · b[batch] with broadcast batch axes; no graph.
template <class T, class D>
Tensor<T, D> matmul_nograd(Tensor<T, D> a, Tensor<T, D> b) {
  VTS_CHECK_SHAPE(a.ndim() >= 2 && b.ndim() >= 2, "matmul needs at least 2-D operands, found ", a.shape().str(),
                  " and ", b.shape().str());
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  VTS_CHECK_SHAPE(b.size(-2) == K, "matmul: inner dimensions differ: ", a.shape().str(), " times ", b.shape().str());
  a = gemm_ready(a);
  b = gemm_ready(b);
  const Shape batch_a(std::vector<int64_t>(a.shape().begin(), a.shape().end() - 2));
  const Shape batch_b(std::vector<int64_t>(b.shape().begin(), b.shape().end() - 2));
  // The message shows both operands, not only their batch dims.
  const std::optional<Shape> batch_or = try_broadcast_shapes(batch_a, batch_b);
  VTS_CHECK_SHAPE(batch_or.has_value(), "matmul: batch dimensions do not broadcast: ", a.shape().str(), " times ",
                  b.shape().str());
  const Shape batch = *batch_or;
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
  const int64_t nb = batch.numel();
  // Batch offsets of a and b under broadcasting.
  auto batch_offsets = [&](const Tensor<T, D>& t, const Shape& tb) {
    std::vector<int64_t> offs(static_cast<size_t>(nb));
    const int lead = batch.ndim() - tb.ndim();
    for (int64_t i = 0; i < nb; ++i) {
      int64_t r = i, off = 0;
      for (int d = batch.ndim() - 1; d >= 0; --d) {
        const int64_t idx = r % batch[d];
        r /= batch[d];
        const int td = d - lead;
        if (td >= 0 && tb[td] != 1) off += idx * t.strides()[static_cast<size_t>(td)];
      }
      offs[static_cast<size_t>(i)] = off;
    }
    return offs;
  };
  auto offs_a = batch_offsets(a, batch_a), offs_b = batch_offsets(b, batch_b);
  auto one = [&](int64_t i) {
    gemm(D{}, matrix_ref(a, offs_a[static_cast<size_t>(i)]), matrix_ref(b, offs_b[static_cast<size_t>(i)]),
              out.data() + i * M * N, N, T(1), T(0));
  };
  if constexpr (is_cpu_v<D>) {
    if (nb == 1) {
      one(0);
    } else {
      // Many small products: one per thread, each GEMM single-threaded (Eigen does not nest).
      cpu::parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) one(i);
      });
    }
  } else {
    if (nb == 1) {
      one(0);
      return out;
    }
    // One strided-batched call needs evenly spaced batch offsets (a broadcast operand has step 0).
    // An operand without them (a permuted view such as attention's heads of a packed QKV tensor)
    // is copied to its contiguous layout first: one copy instead of nb separate GEMM launches.
    auto even_stride = [&](const std::vector<int64_t>& offs) -> std::optional<int64_t> {
      const int64_t step = offs[1] - offs[0];
      if (step < 0) return std::nullopt;
      for (int64_t i = 2; i < nb; ++i)
        if (offs[static_cast<size_t>(i)] != offs[0] + i * step) return std::nullopt;
      return step;
    };
    auto sa = even_stride(offs_a), sb = even_stride(offs_b);
    if (!sa) {
      a = a.contiguous_nograd();
      offs_a = batch_offsets(a, batch_a);
      sa = even_stride(offs_a);
    }
    if (!sb) {
      b = b.contiguous_nograd();
      offs_b = batch_offsets(b, batch_b);
      sb = even_stride(offs_b);
    }
    if (sa && sb) {
      gemm_strided_batched(D{}, matrix_ref(a, offs_a[0]), *sa, matrix_ref(b, offs_b[0]), *sb, out.data(), N, M * N, nb,
                           1.0f, 0.0f);
    } else {  // a partial broadcast ([B, 1, M, K] against [B, H, K, N]): product by product, in order
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  }
  return out;
}

}  // namespace detail

template <class T, class D>
Tensor<T, D> matmul(const Tensor<T, D>& a, const Tensor<T, D>& b) {
  Tensor<T, D> out = detail::matmul_nograd(a, b);
  return record(out, "matmul", {&a, &b},
                [ad = Saved(a), bd = Saved(b), a_shape = a.shape(), b_shape = b.shape(), ga = needs_grad(a),
                 gb = needs_grad(b)](const Tensor<T, D>& g) {
                  Tensor<T, D> da, db;
                  if (ga) da = sum_to(detail::matmul_nograd(g, bd.get().transpose(-2, -1)), a_shape);
                  if (gb) db = sum_to(detail::matmul_nograd(ad.get().transpose(-2, -1), g), b_shape);
                  return std::vector<Tensor<T, D>>{da, db};
                });
}

template <class T, class D>
Tensor<T, D> linear(const Tensor<T, D>& x, const Tensor<T, D>& w, const Tensor<T, D>& bias = Tensor<T, D>()) {
  VTS_CHECK_SHAPE(w.ndim() == 2, "linear: weight must be [out, in], found ", w.shape().str());
  const int64_t in = w.size(1), out_features = w.size(0);
  VTS_CHECK_SHAPE(x.ndim() >= 1 && x.size(-1) == in, "linear: input ", x.shape().str(), " does not end in ", in,
                  " features (weight ", w.shape().str(), ")");
  VTS_CHECK_SHAPE(!bias.defined() || bias.shape() == Shape{out_features}, "linear: bias shape ",
                  bias.defined() ? bias.shape().str() : "", " does not match [", out_features, "]");
  // The rows are the product of the leading dims, not numel / in: with in = 0 (a zero-feature
  // input) that division is by zero and kills the process.
  int64_t M = 1;
  for (int i = 0; i + 1 < x.ndim(); ++i) M *= x.shape()[i];
  Tensor<T, D> x2 = x.contiguous_nograd().reshape(Shape{M, in}).detach();
  Tensor<T, D> w2 = detail::gemm_ready(w.detach());
  Shape out_shape = x.shape();
  out_shape[out_shape.ndim() - 1] = out_features;
  Tensor<T, D> out = Tensor<T, D>::empty(out_shape);
  const auto xref = MatrixRef<T>{x2.data(), M, in, in, 1};
  const auto wt = MatrixRef<T>{w2.data(), in, out_features, w2.strides()[1], w2.strides()[0]};
  if (bias.defined()) {
    gemm_bias(D{}, xref, wt, bias.contiguous_nograd().data(), out.data(), out_features);
  } else {
    gemm(D{}, xref, wt, out.data(), out_features, T(1), T(0));
  }
  return record(out, "linear", {&x, &w, &bias},
                [saved_x = Saved(x2), saved_w = Saved(w2), M, in, out_features, x_shape = x.shape(),
                 gx = needs_grad(x), gw = needs_grad(w), gb = needs_grad(bias)](const Tensor<T, D>& g) {
                  Tensor<T, D> g2 = g.contiguous_nograd();
                  const MatrixRef<T> gref{g2.data(), M, out_features, out_features, 1};
                  Tensor<T, D> dx, dw, db;
                  if (gx) {
                    const Tensor<T, D>& w2 = saved_w.get();
                    dx = Tensor<T, D>::empty(x_shape);
                    gemm(D{}, gref, MatrixRef<T>{w2.data(), out_features, in, w2.strides()[0], w2.strides()[1]},
                              dx.data(), in, T(1), T(0));
                  }
                  if (gb) db = Tensor<T, D>::empty(Shape{out_features});
                  if (gw) {
                    dw = Tensor<T, D>::empty(Shape{out_features, in});
                    const MatrixRef<T> gt{g2.data(), out_features, M, 1, out_features};  // gᵀ
                    const MatrixRef<T> xref{saved_x.get().data(), M, in, in, 1};
                    // The bias gradient (the row sums of gᵀ) comes with the weight gradient's GEMM.
                    if (gb) gemm_row_sums(D{}, gt, xref, dw.data(), in, db.data());
                    else gemm(D{}, gt, xref, dw.data(), in, T(1), T(0));
                  } else if (gb) {
                    sum_middle(D{}, g2.data(), 1, M, out_features, db.data());
                  }
                  return std::vector<Tensor<T, D>>{dx, dw, db};
                });
}

}  // namespace vts
