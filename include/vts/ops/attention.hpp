#pragma once
// Scaled-dot-product attention as one op.
//   attention(q, k, v [B, H, N, d]) -> [B, H, N, d]; softmax(q kᵀ / √d) v. Any strides with a
//     unit stride along d are read in place. Saves q, k, v, the output and the row log-sum-exp.
//   self_attention_packed(qkv [B, N, 3·H·d], H) -> [B, N, H·d]: the ViT layout, where one linear
//     layer produced q, k and v side by side. Heads are read from and gradients written into the
//     packed layout directly, so neither direction splits, permutes or concatenates tensors.
// The row log-sum-exp and the scale are acc_t<T> (fp32 for bf16). On CUDA, views whose rows are not
// 16-byte aligned are copied first, and a shape the fused kernels do not take (head dim outside
// {16, 32, 64, 128}, or 128 in bf16, whose backward has no fused kernel) is computed by
// matmul → softmax → matmul instead.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "vts/backend/cpu/attention.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/softmax.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/attention.hpp"
#endif

namespace vts {

namespace detail {
template <class T, class D>
HeadLayout<const T> heads_of(const Tensor<T, D>& t) {
  return {t.data(), t.strides()[0], t.strides()[1], t.strides()[2]};
}
template <class T, class D>
HeadLayout<T> heads_of_mut(const Tensor<T, D>& t) {
  return {t.data(), t.strides()[0], t.strides()[1], t.strides()[2]};
}
// Elements per 16 bytes: device kernels read rows with 16-byte accesses.
template <class T>
inline constexpr int64_t kPer16 = 16 / static_cast<int64_t>(sizeof(T));

template <class T, class D>
bool rows_aligned16(const Tensor<T, D>& t) {
  if (reinterpret_cast<uintptr_t>(t.data()) % 16 != 0) return false;
  for (int i = 0; i + 1 < t.ndim(); ++i)
    if (t.strides()[static_cast<size_t>(i)] % kPer16<T> != 0) return false;
  return true;
}

// A view the kernels can read: unit stride along d (and, on a device, 16-byte aligned rows; a fresh
// copy has them whenever d is a multiple of 16 bytes, which the device kernels require anyway).
template <class T, class D>
Tensor<T, D> unit_inner_stride(const Tensor<T, D>& t) {
  if constexpr (is_cpu_v<D>) {
    return t.strides().back() == 1 ? t.detach() : t.clone_nograd();
  } else {
    return t.strides().back() == 1 && rows_aligned16(t) ? t.detach() : t.clone_nograd();
  }
}
// Contiguous (and, on a device, 16-byte aligned).
template <class T, class D>
Tensor<T, D> packed_contiguous(const Tensor<T, D>& t) {
  if constexpr (is_cpu_v<D>) {
    return t.contiguous_nograd();
  } else {
    return t.is_contiguous() && rows_aligned16(t) ? t.detach() : t.clone_nograd();
  }
}
// An uninitialised [B, H, N, d] tensor stored as [B, N, H, d]: merging heads afterwards is free.
template <class T, class D>
Tensor<T, D> empty_heads(int64_t B, int64_t H, int64_t N, int64_t d) {
  return Tensor<T, D>::empty(Shape{B, N, H, d}).permute({0, 2, 1, 3});
}

// Whether device D's fused kernels take this shape in both directions (the CPU's take any), and, in
// fp32 on CUDA, are asked for (cuda::set_attention_f32_composite).
template <class T, class D>
bool fused_attention_supported([[maybe_unused]] int64_t N, [[maybe_unused]] int64_t d) {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, Cuda>) {
    constexpr auto dtype = std::is_same_v<T, bf16> ? cuda::AttentionDtype::bf16 : cuda::AttentionDtype::f32;
    if (dtype == cuda::AttentionDtype::f32 && cuda::attention_f32_composite()) return false;
    return d % kPer16<T> == 0 && cuda::attention_supported(dtype, false, N, d) &&
           cuda::attention_supported(dtype, true, N, d);
  }
#endif
  return true;
}

// softmax(scale · q kᵀ) v from differentiable ops, for problems the fused kernels do not take (and,
// in fp32 on CUDA, on request: cuda::set_attention_f32_composite). The scale goes on q, N·d values,
// rather than on the N × N scores: one pass over the scores fewer each way (the same values when the
// scale is a power of two, 1/8 at d = 64).
template <class T, class D>
Tensor<T, D> attention_unfused(const Tensor<T, D>& q, const Tensor<T, D>& k, const Tensor<T, D>& v, acc_t<T> scale) {
  return matmul(softmax(matmul(mul(q, static_cast<T>(scale)), k.transpose(-2, -1)), -1), v);
}
// The same for the packed layout: [B, N, 3, H, d] → q, k, v as [B, H, N, d] views, and the heads
// merged back to [B, N, H·d].
template <class T, class D>
Tensor<T, D> self_attention_packed_unfused(const Tensor<T, D>& qkv, int64_t heads, acc_t<T> scale) {
  const int64_t B = qkv.size(0), N = qkv.size(1), dim = qkv.size(2) / 3, d = dim / heads;
  const Tensor<T, D> parts = qkv.reshape(Shape{B, N, 3, heads, d});
  auto part = [&](int64_t which) { return parts.select(2, which).permute({0, 2, 1, 3}); };
  return attention_unfused(part(0), part(1), part(2), scale).permute({0, 2, 1, 3}).reshape(Shape{B, N, dim});
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> attention(const Tensor<T, D>& q, const Tensor<T, D>& k, const Tensor<T, D>& v) {
  VTS_CHECK_SHAPE(q.ndim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(),
                  "attention: q, k, v must share one [B, H, N, d] shape, found ", q.shape().str(), ", ",
                  k.shape().str(), ", ", v.shape().str());
  using A = acc_t<T>;
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), d = q.size(3);
  const A scale = A(1) / std::sqrt(A(d));
  if constexpr (!is_cpu_v<D>) {
    if (!detail::fused_attention_supported<T, D>(N, d)) return detail::attention_unfused(q, k, v, scale);
  }
  Tensor<T, D> qs = detail::unit_inner_stride(q), ks = detail::unit_inner_stride(k),
               vs = detail::unit_inner_stride(v);
  Tensor<T, D> out = detail::empty_heads<T, D>(B, H, N, d);
  Tensor<A, D> lse = Tensor<A, D>::empty(Shape{B, H, N});
  attention_forward(D{}, B, H, N, d, scale, detail::heads_of(qs), detail::heads_of(ks), detail::heads_of(vs),
                    detail::heads_of_mut(out), lse.data());
  return record(out, "attention", {&q, &k, &v},
                [saved_q = Saved(qs), saved_k = Saved(ks), saved_v = Saved(vs), saved_out = Saved(out), lse, B, H, N,
                 d, scale](const Tensor<T, D>& g) {
                  const Tensor<T, D>& qs = saved_q.get();
                  const Tensor<T, D>& ks = saved_k.get();
                  const Tensor<T, D>& vs = saved_v.get();
                  const Tensor<T, D>& od = saved_out.get();
                  Tensor<T, D> gs = detail::unit_inner_stride(g);
                  Tensor<T, D> dq = Tensor<T, D>::empty(Shape{B, H, N, d}), dk = Tensor<T, D>::empty(Shape{B, H, N, d}),
                               dv = Tensor<T, D>::empty(Shape{B, H, N, d});
                  attention_backward(D{}, B, H, N, d, scale, detail::heads_of(qs), detail::heads_of(ks),
                                     detail::heads_of(vs), detail::heads_of(od), lse.data(), detail::heads_of(gs),
                                     detail::heads_of_mut(dq), detail::heads_of_mut(dk), detail::heads_of_mut(dv));
                  return std::vector<Tensor<T, D>>{dq, dk, dv};
                });
}

template <class T, class D>
Tensor<T, D> self_attention_packed(const Tensor<T, D>& qkv, int64_t heads) {
  // heads is checked first: the divisibility test below would divide by zero for heads = 0.
  VTS_CHECK_SHAPE(heads > 0, "self_attention_packed: heads must be positive, got ", heads, " for qkv ",
                  qkv.shape().str());
  VTS_CHECK_SHAPE(qkv.ndim() == 3 && qkv.size(2) % (3 * heads) == 0, "self_attention_packed: expected [B, N, 3·",
                  heads, "·d], found ", qkv.shape().str());
  using A = acc_t<T>;
  const int64_t B = qkv.size(0), N = qkv.size(1), dim = qkv.size(2) / 3, d = dim / heads;
  const A scale = A(1) / std::sqrt(A(d));
  if constexpr (!is_cpu_v<D>) {
    if (!detail::fused_attention_supported<T, D>(N, d)) return detail::self_attention_packed_unfused(qkv, heads, scale);
  }
  Tensor<T, D> x = detail::packed_contiguous(qkv);
  const int64_t sb = N * 3 * dim, sn = 3 * dim;
  auto part = [&](const Tensor<T, D>& t, int which) {
    return HeadLayout<const T>{t.data() + which * dim, sb, d, sn};
  };
  Tensor<T, D> out = Tensor<T, D>::empty(Shape{B, N, dim});
  const HeadLayout<T> out_heads{out.data(), N * dim, d, dim};
  Tensor<A, D> lse = Tensor<A, D>::empty(Shape{B, heads, N});
  attention_forward(D{}, B, heads, N, d, scale, part(x, 0), part(x, 1), part(x, 2), out_heads, lse.data());
  return record(out, "self_attention_packed", {&qkv},
                [saved_x = Saved(x), saved_out = Saved(out), lse, B, N, dim, d, heads, scale, sb,
                 sn](const Tensor<T, D>& g) {
                  const Tensor<T, D>& x = saved_x.get();
                  const Tensor<T, D>& od = saved_out.get();
                  Tensor<T, D> gc = detail::packed_contiguous(g);
                  Tensor<T, D> dx = Tensor<T, D>::empty(x.shape());
                  auto in = [&](const Tensor<T, D>& t, int which) {
                    return HeadLayout<const T>{t.data() + which * dim, sb, d, sn};
                  };
                  auto grad = [&](int which) { return HeadLayout<T>{dx.data() + which * dim, sb, d, sn}; };
                  const HeadLayout<const T> o_heads{od.data(), N * dim, d, dim}, g_heads{gc.data(), N * dim, d, dim};
                  attention_backward(D{}, B, heads, N, d, scale, in(x, 0), in(x, 1), in(x, 2), o_heads, lse.data(),
                                     g_heads, grad(0), grad(1), grad(2));
                  return std::vector<Tensor<T, D>>{dx};
                });
}

}  // namespace vts
