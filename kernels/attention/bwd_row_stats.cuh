#pragma once
// The per-query numbers a split attention backward's dQ kernel works out for its key-side kernel:
// δ = rowsum(dO ∘ O) and lse·log₂e (shared by attention_bwd_bf16_split.cu and the Hopper backward).
#include "attention/attention.cuh"

namespace vts::cuda::attn {

// δ and lse2 of a warp's 16 query rows qw..qw + 15: lanes 2r and 2r + 1 each take half of row r
// with 16-byte loads (one round trip, where a row at a time would be 16). Written to the
// workspaces' rows of (b, h) — rows past N too (δ = 0, lse2 = +inf: P = 0), the padding the key
// side reads — and shuffled to the lanes that hold rows g and g + 8 of the MMA fragments.
template <int D>
__device__ __forceinline__ void query_row_stats(const BwdArgs<__nv_bfloat16>& a, int b, int h, int qw, int lane,
                                                float* lse2_ws_row, float* delta_ws_row, float (&delta)[2],
                                                float (&lse2)[2]) {
  const int g = lane / 4;
  const int q = qw + lane / 2;
  float d = 0.0f, l2 = INFINITY;
  if (q < a.N) {
    const __nv_bfloat16* o = row_ptr(a.o, b, h, q) + (lane & 1) * (D / 2);
    const __nv_bfloat16* go = row_ptr(a.dout, b, h, q) + (lane & 1) * (D / 2);
#pragma unroll
    for (int i = 0; i < D / 2; i += 8) {
      const uint4 ov = *reinterpret_cast<const uint4*>(o + i), gv = *reinterpret_cast<const uint4*>(go + i);
      const __nv_bfloat16* oe = reinterpret_cast<const __nv_bfloat16*>(&ov);
      const __nv_bfloat16* ge = reinterpret_cast<const __nv_bfloat16*>(&gv);
#pragma unroll
      for (int e = 0; e < 8; ++e) d += __bfloat162float(oe[e]) * __bfloat162float(ge[e]);
    }
    l2 = a.lse[(int64_t(b) * a.H + h) * a.N + q] * kLog2e;
  }
  d += __shfl_xor_sync(0xffffffffu, d, 1);
  if ((lane & 1) == 0) {
    delta_ws_row[q] = d;
    lse2_ws_row[q] = l2;
  }
  for (int r = 0; r < 2; ++r) {
    delta[r] = __shfl_sync(0xffffffffu, d, 2 * (g + 8 * r));
    lse2[r] = __shfl_sync(0xffffffffu, l2, 2 * (g + 8 * r));
  }
}

}  // namespace vts::cuda::attn
