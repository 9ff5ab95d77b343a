#pragma once
// GELU (exact) over contiguous buffers — the signatures of vts::cpu::gelu_forward /
// gelu_backward (backend/cpu/activation.hpp).
//   y  = x·Φ(x),             Φ(x) = ½(1 + erf(x/√2))
//   dx = g·(Φ(x) + x·φ(x)),  φ(x) = e^{−x²/2}/√(2π)
// bf16 buffers are computed in fp32 and rounded once on store. fp32 evaluates Φ with erff, as the
// CPU does; bf16 with the exp form of core/gelu_exp_form.hpp (GeluLaunch below).
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

void gelu_forward(Device, const float* x, float* y, int64_t n);
void gelu_forward(Device, const bf16* x, bf16* y, int64_t n);
void gelu_backward(Device, const float* x, const float* g, float* dx, int64_t n);
void gelu_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n);

// How the bf16 kernels compute Φ. The default, the exp form Φ(−|x|) = t · 2^(−x²/2 · log2 e + R(t)),
// t = 1/(1 + 0.4|x|) (core/gelu_exp_form.hpp): about 18 instructions per element instead of erff's
// 30, which moved these kernels from issue-bound to near the copy bandwidth (H200, 2026-12-04:
// forward 29.3 → 25.9 µs, backward 40.5 → 34.6 µs at 6304 × 3072, 87 / 91 % of copy; docs/perf.md),
// the correctly rounded bf16 result at every bf16 input outside the denormal range (erff's formula
// misses 197, where 1 + erf cancels), and no cancellation below x ≈ −5.5. erf_form selects erff,
// the CPU's formula, for the kernel benchmark.
struct GeluLaunch {
  bool erf_form = false;
};
void gelu_forward(Device, const bf16* x, bf16* y, int64_t n, const GeluLaunch& launch);
void gelu_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const GeluLaunch& launch);

// GELU, then dropout, in one pass each way (the ViT MLP's fc1 → GELU → dropout): the mask is the
// one dropout_apply (dropout.hpp) draws for the same (seed, first_block, threshold, keep_scale),
// drawn inside the GELU's pass instead of a second pass over the hidden activation, and every
// rounding of the two-launch form is kept, so the results are those launches' bits.
//   forward  y  = round(round(gelu(x)) · m)
//   backward dx = round(round(g · m) · gelu'(x))      (m = keep_scale where kept, else 0)
struct DropoutDraw {
  uint64_t seed = 0, first_block = 0;
  uint32_t threshold = 0;
  float keep_scale = 1.0f;
  const uint64_t* first_offset = nullptr;  // device memory, added to first_block (dropout.hpp)
};
void gelu_dropout_forward(Device, const float* x, float* y, int64_t n, const DropoutDraw& d);
void gelu_dropout_forward(Device, const bf16* x, bf16* y, int64_t n, const DropoutDraw& d,
                          const GeluLaunch& launch = {});
void gelu_dropout_backward(Device, const float* x, const float* g, float* dx, int64_t n, const DropoutDraw& d);
void gelu_dropout_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const DropoutDraw& d,
                           const GeluLaunch& launch = {});

// The same pair with the mask kept: the forward also writes which elements it kept (keep: ⌈n/4⌉
// bytes, one per Philox block of 4 elements, bit q for element 4b + q), and the backward reads
// them instead of running Philox again — the same factors, so the same bits as above; ⌈n/4⌉ bytes
// held between the two (4.8 MB for a ViT-B/16 MLP activation at batch 32). An alternative for the
// kernel benchmark (docs/cuda.md: the fused kernels are bound by Philox's integer work). The op
// gelu_dropout (ops/dropout.hpp) takes this pair while set_gelu_dropout_keep_mask(true) is in
// effect (process-wide; off by default until a device has timed it in a step), the pair above
// otherwise: the same results either way.
void gelu_dropout_forward_keep(Device, const float* x, float* y, int64_t n, const DropoutDraw& d, uint8_t* keep);
void gelu_dropout_forward_keep(Device, const bf16* x, bf16* y, int64_t n, const DropoutDraw& d, uint8_t* keep,
                               const GeluLaunch& launch = {});
void gelu_dropout_backward_kept(Device, const float* x, const float* g, float* dx, int64_t n, const uint8_t* keep,
                                float keep_scale);
void gelu_dropout_backward_kept(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const uint8_t* keep,
                                float keep_scale, const GeluLaunch& launch = {});
void set_gelu_dropout_keep_mask(bool keep);
bool gelu_dropout_keep_mask();

}  // namespace vts::cuda
