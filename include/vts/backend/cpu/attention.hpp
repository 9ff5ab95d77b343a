#pragma once
// Fused scaled-dot-product attention on the CPU, FlashAttention-style: scores live only in a
// per-task scratch matrix (one head's N × N for float heads of up to 1,024 tokens in AVX-512 builds,
// a 64-row block of queries otherwise), never as a B×H×N×N tensor. Forward saves the row
// log-sum-exp; backward recomputes the probabilities from it.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "vts/backend/cpu/panel_gemm.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"
#include "vts/core/layout.hpp"

namespace vts::cpu {

namespace detail {
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowsMap = Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstRowsMap = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>;

// e^x for every element of a contiguous array (a matrix seen flat), vectorised by Eigen.
template <class T>
void exp_in_place_flat(T* data, int64_t size) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> flat(data, size);
  flat = flat.exp();
}
template <class T>
void exp_in_place(RowMatrix<T>& m) {
  exp_in_place_flat(m.data(), m.size());
}

constexpr int64_t kAttentionRowBlock = 64;

#if defined(__AVX512F__)
// Float attention in AVX-512 builds: each (batch, head) is one task whose six products go to the
// panel kernel (panel_gemm.hpp) whole — scores N × N, not 64-row blocks — reading the heads in place
// (Kᵀ and Vᵀ are its column-major B) and writing o, dq, dk, dv straight into their strided rows.
// Eigen's GEMM, packing both operands into 48 × 4 tiles, is slow at these sizes (ViTTiny28's heads
// are 17 × 16). Heads of one token or one feature, and sequences past kSmallAttentionMaxTokens,
// keep the blocked Eigen path. (The panel kernel takes any depth of head since it cuts k into
// blocks.)
constexpr int64_t kSmallAttentionMaxTokens = 1024;

inline bool small_attention_takes(int64_t N, int64_t d) {
  return N >= 2 && d >= 2 && N <= kSmallAttentionMaxTokens;
}

// Scores and probabilities of one head, N rows of `ld` floats (ld: N rounded up to 16). 64-byte
// aligned with zeros past column N: Eigen's exp and reductions take a scalar path before the first
// aligned address, so the bits would otherwise depend on where each thread's buffer landed, and the
// exp runs over the block as one flat vectorised array (see the Eigen path) — the zeros are never read.
using SmallAttentionBuffer = std::vector<float, Eigen::aligned_allocator<float>>;
struct SmallAttentionScratch {
  SmallAttentionBuffer s, ds;
};

inline int64_t small_attention_ld(int64_t N) { return (N + 15) / 16 * 16; }

inline float* small_attention_rows(SmallAttentionBuffer& buffer, int64_t N) {
  const int64_t ld = small_attention_ld(N);
  buffer.resize(static_cast<size_t>(N * ld));
  for (int64_t r = 0; r < N; ++r) std::fill(buffer.data() + r * ld + N, buffer.data() + (r + 1) * ld, 0.0f);
  return buffer.data();
}

using RowArrayMap = Eigen::Map<Eigen::Array<float, 1, Eigen::Dynamic>>;
using ConstRowArrayMap = Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>;

// One head's q, k, v, o and dout: N × d, unit inner stride, rows `*_sn` apart.
struct SmallHead {
  const float *q, *k, *v;
  int64_t q_sn, k_sn, v_sn;
};

// s = scale · q kᵀ (the scale as the kernel's alpha: each sum rounded once, then multiplied).
inline void small_attention_scores(int64_t N, int64_t d, float scale, const SmallHead& h, float* s) {
  panel_gemm({h.q, N, d, h.q_sn, 1}, {h.k, d, N, 1, h.k_sn}, s, small_attention_ld(N), scale, 0.0f);
}

inline void small_attention_forward(int64_t N, int64_t d, float scale, const SmallHead& h, float* o, int64_t o_sn,
                                    float* lse, SmallAttentionScratch& w) {
  const int64_t ld = small_attention_ld(N);
  float* s = small_attention_rows(w.s, N);
  small_attention_scores(N, d, scale, h, s);
  for (int64_t r = 0; r < N; ++r) {
    RowArrayMap row(s + r * ld, N);
    lse[r] = row.maxCoeff();
    row -= lse[r];
  }
  exp_in_place_flat(s, N * ld);
  for (int64_t r = 0; r < N; ++r) {
    RowArrayMap row(s + r * ld, N);
    const float sum = row.sum();
    row *= 1.0f / sum;
    lse[r] += std::log(sum);
  }
  panel_gemm({s, N, N, ld, 1}, {h.v, N, d, h.v_sn, 1}, o, o_sn, 1.0f, 0.0f);
}

// P again from the saved log-sum-exp; dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ∘ (dP − rowsum(dO ∘ O)) · scale,
// dQ = dS·K, dK = dSᵀ·Q.
struct SmallHeadGrads {
  const float *o, *dout, *lse;
  int64_t o_sn, dout_sn;
  float *dq, *dk, *dv;
  int64_t dq_sn, dk_sn, dv_sn;
};

inline void small_attention_backward(int64_t N, int64_t d, float scale, const SmallHead& h, const SmallHeadGrads& g,
                                     SmallAttentionScratch& w) {
  const int64_t ld = small_attention_ld(N);
  float* p = small_attention_rows(w.s, N);
  small_attention_scores(N, d, scale, h, p);
  for (int64_t r = 0; r < N; ++r) RowArrayMap(p + r * ld, N) -= g.lse[r];
  exp_in_place_flat(p, N * ld);
  panel_gemm({p, N, N, 1, ld}, {g.dout, N, d, g.dout_sn, 1}, g.dv, g.dv_sn, 1.0f, 0.0f);  // Pᵀ: P by columns

  float* ds = small_attention_rows(w.ds, N);
  panel_gemm({g.dout, N, d, g.dout_sn, 1}, {h.v, d, N, 1, h.v_sn}, ds, ld, 1.0f, 0.0f);  // dP
  for (int64_t r = 0; r < N; ++r) {
    const float delta = (ConstRowArrayMap(g.dout + r * g.dout_sn, d) * ConstRowArrayMap(g.o + r * g.o_sn, d)).sum();
    RowArrayMap row(ds + r * ld, N);
    row = ConstRowArrayMap(p + r * ld, N) * (row - delta) * scale;
  }
  panel_gemm({ds, N, N, ld, 1}, {h.k, N, d, h.k_sn, 1}, g.dq, g.dq_sn, 1.0f, 0.0f);
  panel_gemm({ds, N, N, 1, ld}, {h.q, N, d, h.q_sn, 1}, g.dk, g.dk_sn, 1.0f, 0.0f);  // dSᵀ: dS by columns
}

// fn(b, h, b·H + h, scratch) for every head, a task each, one scratch a thread.
template <class Fn>
void for_each_small_head(int64_t B, int64_t H, Fn&& fn) {
  parallel_for(0, B * H, 1, [&](int64_t t0, int64_t t1) {
    SmallAttentionScratch scratch;
    for (int64_t bh = t0; bh < t1; ++bh) fn(bh / H, bh % H, bh, scratch);
  });
}

template <class T>
T* head_rows(HeadLayout<T> x, int64_t b, int64_t h) {
  return x.data + b * x.sb + h * x.sh;
}
#endif
}  // namespace detail

// o = softmax(scale · q kᵀ) v per (b, h); lse[b, h, n] = log Σ_j exp(scale · q_n·k_j).
template <class T>
void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, T scale, HeadLayout<const T> q,
                       HeadLayout<const T> k, HeadLayout<const T> v, HeadLayout<T> o, T* lse) {
  using namespace detail;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (small_attention_takes(N, d)) {
      for_each_small_head(B, H, [&](int64_t b, int64_t h, int64_t bh, SmallAttentionScratch& scratch) {
        const SmallHead head{head_rows(q, b, h), head_rows(k, b, h), head_rows(v, b, h), q.sn, k.sn, v.sn};
        small_attention_forward(N, d, scale, head, head_rows(o, b, h), o.sn, lse + bh * N, scratch);
      });
      return;
    }
  }
#endif
  const int64_t blocks = (N + kAttentionRowBlock - 1) / kAttentionRowBlock;
  parallel_for(0, B * H * blocks, 1, [&](int64_t t0, int64_t t1) {
    RowMatrix<T> s;
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bh = task / blocks, blk = task % blocks, b = bh / H, h = bh % H;
      const int64_t r0 = blk * kAttentionRowBlock, rn = std::min(kAttentionRowBlock, N - r0);
      ConstRowsMap<T> qm(q.data + b * q.sb + h * q.sh + r0 * q.sn, rn, d, Eigen::OuterStride<>(q.sn));
      ConstRowsMap<T> km(k.data + b * k.sb + h * k.sh, N, d, Eigen::OuterStride<>(k.sn));
      ConstRowsMap<T> vm(v.data + b * v.sb + h * v.sh, N, d, Eigen::OuterStride<>(v.sn));
      RowsMap<T> om(o.data + b * o.sb + h * o.sh + r0 * o.sn, rn, d, Eigen::OuterStride<>(o.sn));
      s.resize(rn, N);
      s.noalias() = (qm * km.transpose()) * scale;
      T* lse_rows = lse + bh * N + r0;
      // Row softmax through Eigen arrays, whose exp is vectorised (a std::exp loop is not, and
      // was most of this function's time). The exp runs once over the whole block seen as one
      // flat array: per row, N = 17 (ViTTiny28) would leave one element of every row to a scalar
      // libm call, and a broadcast (colwise) expression is not vectorised at all.
      Eigen::Array<T, Eigen::Dynamic, 1> row_max(rn);
      for (int64_t r = 0; r < rn; ++r) {
        row_max(r) = s.row(r).maxCoeff();
        s.row(r).array() -= row_max(r);
      }
      exp_in_place(s);
      for (int64_t r = 0; r < rn; ++r) {
        auto row = s.row(r).array();
        const T sum = row.sum();
        row *= T(1) / sum;
        lse_rows[r] = row_max(r) + std::log(sum);
      }
      om.noalias() = s * vm;
    }
  });
}

// Gradients of the forward above. dq, dk, dv are written (not accumulated).
template <class T>
void attention_backward(Device, int64_t B, int64_t H, int64_t N, int64_t d, T scale, HeadLayout<const T> q,
                        HeadLayout<const T> k, HeadLayout<const T> v, HeadLayout<const T> o, const T* lse,
                        HeadLayout<const T> dout, HeadLayout<T> dq, HeadLayout<T> dk, HeadLayout<T> dv) {
  using namespace detail;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (small_attention_takes(N, d)) {
      for_each_small_head(B, H, [&](int64_t b, int64_t h, int64_t bh, SmallAttentionScratch& scratch) {
        const SmallHead head{head_rows(q, b, h), head_rows(k, b, h), head_rows(v, b, h), q.sn, k.sn, v.sn};
        const SmallHeadGrads grads{.o = head_rows(o, b, h),
                                   .dout = head_rows(dout, b, h),
                                   .lse = lse + bh * N,
                                   .o_sn = o.sn,
                                   .dout_sn = dout.sn,
                                   .dq = head_rows(dq, b, h),
                                   .dk = head_rows(dk, b, h),
                                   .dv = head_rows(dv, b, h),
                                   .dq_sn = dq.sn,
                                   .dk_sn = dk.sn,
                                   .dv_sn = dv.sn};
        small_attention_backward(N, d, scale, head, grads, scratch);
      });
      return;
    }
  }
#endif
  parallel_for(0, B * H, 1, [&](int64_t t0, int64_t t1) {
    RowMatrix<T> p, dp;
    Eigen::Matrix<T, Eigen::Dynamic, 1> delta;
    for (int64_t bh = t0; bh < t1; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      ConstRowsMap<T> km(k.data + b * k.sb + h * k.sh, N, d, Eigen::OuterStride<>(k.sn));
      ConstRowsMap<T> vm(v.data + b * v.sb + h * v.sh, N, d, Eigen::OuterStride<>(v.sn));
      RowsMap<T> dkm(dk.data + b * dk.sb + h * dk.sh, N, d, Eigen::OuterStride<>(dk.sn));
      RowsMap<T> dvm(dv.data + b * dv.sb + h * dv.sh, N, d, Eigen::OuterStride<>(dv.sn));
      dkm.setZero();
      dvm.setZero();
      for (int64_t r0 = 0; r0 < N; r0 += kAttentionRowBlock) {
        const int64_t rn = std::min(kAttentionRowBlock, N - r0);
        ConstRowsMap<T> qm(q.data + b * q.sb + h * q.sh + r0 * q.sn, rn, d, Eigen::OuterStride<>(q.sn));
        ConstRowsMap<T> om(o.data + b * o.sb + h * o.sh + r0 * o.sn, rn, d, Eigen::OuterStride<>(o.sn));
        ConstRowsMap<T> gm(dout.data + b * dout.sb + h * dout.sh + r0 * dout.sn, rn, d,
                           Eigen::OuterStride<>(dout.sn));
        RowsMap<T> dqm(dq.data + b * dq.sb + h * dq.sh + r0 * dq.sn, rn, d, Eigen::OuterStride<>(dq.sn));
        p.resize(rn, N);
        p.noalias() = (qm * km.transpose()) * scale;
        const T* lse_rows = lse + bh * N + r0;
        for (int64_t r = 0; r < rn; ++r) p.row(r).array() -= lse_rows[r];
        exp_in_place(p);  // one flat exp over the block (see the forward)
        dvm.noalias() += p.transpose() * gm;
        dp.resize(rn, N);
        dp.noalias() = gm * vm.transpose();
        delta = (gm.cwiseProduct(om)).rowwise().sum();
        // dS = P ∘ (dP − δ), stored over dp.
        dp.array() = p.array() * (dp.array().colwise() - delta.array()) * scale;
        dqm.noalias() = dp * km;
        dkm.noalias() += dp.transpose() * qm;
      }
    }
  });
}

}  // namespace vts::cpu
