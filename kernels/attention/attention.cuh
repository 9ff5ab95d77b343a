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
// skip_padding: cuda::set_attention_f32_skip_padding (the same bits, less work past N).
template <int D>
void forward_f32(const FwdArgs<float>& a, bool skip_padding);
template <int D>
void backward_f32(const BwdArgs<float>& a, bool skip_padding);

// The bf16 kernels: forward any N, D ∈ {16, 32, 64, 128}; backward D ∈ {16, 32, 64}, one CTA per
// head for N ≤ kBf16BwdMaxN, split into a dQ and a dK/dV kernel for any N.
inline constexpr int kBf16BwdMaxN = 256;
// How the bf16 forward's default layout (64 rows a block, 16 a warp) runs its key tiles; the first
// three give the default's bits (false everywhere), fold_scale the same within bf16 tolerance (and
// only for a positive scale). Only narrow_last_tile applies at D ≠ 64.
struct ForwardTileCode {
  bool narrow_last_tile = false;     // a last tile of ≤ 16 keys does the math of 16
  bool mask_last_tile_only = false;  // full tiles skip the key mask
  bool unrolled_loads = false;       // Q/K/V tiles through load_rows_unrolled
  bool fold_scale = false;           // the scale applied in the exponentials' FFMA
};
// rows_per_block 64 or 128 (D ≤ 64), rows_per_warp 16 or 32 (D ≤ 64); 0 = the default (64, 16).
template <int D>
void forward_bf16(const FwdArgs<__nv_bfloat16>& a, int rows_per_block, int rows_per_warp, const ForwardTileCode& code);
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

// cp.async of ROWS rows of D bf16 (row r at src + r·stride; zero-filled past `valid` ≥ 1) into dst
// with pitch P by the block's THREADS threads (blockDim.x must be THREADS), 16 bytes a copy. With
// the counts compile-time constants every thread's copies unroll completely, from one base pointer
// advanced by a 64-bit add and with constant shared-memory offsets; a loop over
// `c = threadIdx.x; c < rows·D/8; c += blockDim.x` has a trip count the compiler cannot see.
template <int D, int P, int THREADS, int ROWS>
__device__ __forceinline__ void load_rows_unrolled(__nv_bfloat16* dst, int valid, const __nv_bfloat16* src,
                                                   int64_t stride) {
  constexpr int kChunks = D / 8, kRowStep = THREADS / kChunks;
  static_assert(THREADS % kChunks == 0, "a thread's copies must all fall in one column");
  const int r0 = threadIdx.x / kChunks, col = threadIdx.x % kChunks * 8;
  const __nv_bfloat16* first_row = src + col;  // what a row past `valid` reads (0 bytes of it)
  const __nv_bfloat16* row = src + r0 * stride + col;
  dst += r0 * P + col;
#pragma unroll
  for (int i = 0; i < (ROWS + kRowStep - 1) / kRowStep; ++i) {
    const int r = r0 + i * kRowStep;
    if (ROWS % kRowStep != 0 && r >= ROWS) break;  // fewer copies than threads in the last step
    const bool ok = r < valid;
    hw::cp_async16(dst + i * kRowStep * P, ok ? row : first_row, ok);
    row += kRowStep * stride;
  }
}

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

}  // namespace vts::cuda::attn
