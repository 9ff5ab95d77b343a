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

}  // namespace vts::cuda
