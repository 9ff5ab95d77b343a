#pragma once
// Internal interface between the attention launchers (attention.cu: checks and dispatch on head
// dim) and the kernels (one translation unit per dtype and direction, so that they compile in
// parallel). Dimension legend for all of them: B batch, H heads, N tokens, D head dim.
#include <cuda_bf16.h>

#include "common/check.cuh"
#include "common/hw.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/attention.hpp"

namespace vts::cuda::attn {

template <class T>
struct FwdArgs {
  HeadLayout<const T> q, k, v;
  HeadLayout<T> o;
  float* lse;  // [B, H, N], natural log
  int B, H, N;
  float scale;
};

template <class T>
struct BwdArgs {
  HeadLayout<const T> q, k, v, o, dout;
  HeadLayout<T> dq, dk, dv;
  const float* lse;
  int B, H, N;
  float scale;
};

// The fp32 kernels: any N; D ∈ {32, 64, 128}.
template <int D>
void forward_f32(const FwdArgs<float>& a);
template <int D>
void backward_f32(const BwdArgs<float>& a);

// The bf16 kernels: forward any N, D ∈ {16, 32, 64, 128}; backward D ∈ {16, 32, 64}, one CTA per
// head for N ≤ kBf16BwdMaxN, split into a dQ and a dK/dV kernel for any N.
inline constexpr int kBf16BwdMaxN = 256;
template <int D>
// rows_per_block 64 or 128 (D ≤ 64), rows_per_warp 16 or 32 (D ≤ 64); 0 = the default (64, 16).
void forward_bf16(const FwdArgs<__nv_bfloat16>& a, int rows_per_block, int rows_per_warp, bool narrow_last_tile);
// The Hopper kernels (attention_{fwd,bwd}_bf16_wgmma.cu, built for sm_90a only): D = 64, N ≤ 256.
inline constexpr int kWgmmaMaxN = 256;
void forward_bf16_wgmma(const FwdArgs<__nv_bfloat16>& a, int blocks_per_sm);  // 2 or 3
// The Hopper backward (attention_bwd_bf16_wgmma.cu, sm_90a only): D = 64, N ≤ kWgmmaMaxN.
void backward_bf16_wgmma(const BwdArgs<__nv_bfloat16>& a);
void wgmma_layout_check(const uint16_t* a, const uint16_t* b, float* d);
template <int D>
void backward_bf16(const BwdArgs<__nv_bfloat16>& a, int barriers);  // per query block: 1, 2, 0 = default
template <int D>
void backward_bf16_split(const BwdArgs<__nv_bfloat16>& a);

// Element (b, h, n, 0) of a HeadLayout.
template <class T>
__device__ __forceinline__ T* row_ptr(const HeadLayout<T>& l, int b, int h, int n) {
  return l.data + b * l.sb + h * l.sh + int64_t(n) * l.sn;
}

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

}  // namespace vts::cuda::attn
