#pragma once
// GELU (exact, erf form) over contiguous buffers — the signatures of vts::cpu::gelu_forward /
// gelu_backward (backend/cpu/activation.hpp).
//   y  = x·Φ(x),             Φ(x) = ½(1 + erf(x/√2))
//   dx = g·(Φ(x) + x·φ(x)),  φ(x) = e^{−x²/2}/√(2π)
// bf16 buffers are computed in fp32 and rounded once on store.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

void gelu_forward(Device, const float* x, float* y, int64_t n);
void gelu_forward(Device, const bf16* x, bf16* y, int64_t n);
void gelu_backward(Device, const float* x, const float* g, float* dx, int64_t n);
void gelu_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n);

// How the bf16 kernels compute Φ, for the kernel benchmark, which times the alternative to the
// default (docs/cuda.md: the bf16 kernels are bound by instruction issue, at 77–79 % of copy
// bandwidth). The library always uses the default.
struct GeluLaunch {
  // Φ(−|x|) = t · 2^(−x²/2 · log2 e + R(t)), t = 1/(1 + 0.4|x|) (core/gelu_exp_form.hpp) instead of erff:
  // about 18 instructions per element instead of 30, the correctly rounded bf16 result at every
  // bf16 input outside the denormal range, and no cancellation below x ≈ −5.5.
  bool exp_form = false;
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
void gelu_dropout_forward(Device, const bf16* x, bf16* y, int64_t n, const DropoutDraw& d);
void gelu_dropout_backward(Device, const float* x, const float* g, float* dx, int64_t n, const DropoutDraw& d);
void gelu_dropout_backward(Device, const bf16* x, const bf16* g, bf16* dx, int64_t n, const DropoutDraw& d);

}  // namespace vts::cuda
