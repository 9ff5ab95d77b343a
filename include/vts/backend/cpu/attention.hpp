#pragma once
// Fused scaled-dot-product attention on the CPU, FlashAttention-style: for each (batch, head) the
// queries are processed in row blocks; a block's scores live only in a per-task scratch matrix,
// never as a B×H×N×N tensor. Forward saves the row log-sum-exp; backward recomputes the
// probabilities from it.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>

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

// e^x for every element of a (contiguous) matrix, as one flat vectorised array.
template <class T>
void exp_in_place(RowMatrix<T>& m) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> flat(m.data(), m.size());
  flat = flat.exp();
}

constexpr int64_t kAttentionRowBlock = 64;
}  // namespace detail

// o = softmax(scale · q kᵀ) v per (b, h); lse[b, h, n] = log Σ_j exp(scale · q_n·k_j).
template <class T>
void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, T scale, HeadLayout<const T> q,
                       HeadLayout<const T> k, HeadLayout<const T> v, HeadLayout<T> o, T* lse) {
  using namespace detail;
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
