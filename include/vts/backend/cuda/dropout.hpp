#pragma once
// Dropout masks from the same Philox4x32-10 stream as vts::cpu::dropout_mask
// (backend/cpu/dropout.hpp): element i takes lane i%4 of the block at counter (first_block + i/4)
// under key `seed`, and is kept when the lane's top 24 bits are ≥ threshold. So for the same
// (seed, first_block) the CPU and the GPU draw bit-identical masks, whatever the thread counts.
// first_offset (optional, device memory): added to first_block when the kernel runs — set inside a
// CUDA graph capture (graph.hpp: philox_offset_for), so that each replay draws fresh masks.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

// mask[i] = keep_scale if kept, else 0 — the signature of vts::cpu::dropout_mask.
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                  float* mask,
                 const uint64_t* first_offset = nullptr);
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, bf16 keep_scale,
                  bf16* mask,
                 const uint64_t* first_offset = nullptr);

// Fused forward: y[i] = x[i]·keep_scale if kept, else 0; the mask is not stored — the backward
// pass regenerates it from (seed, first_block) with the same call on (g → dx).
void dropout_apply(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                   const float* x, float* y,
                 const uint64_t* first_offset = nullptr);
void dropout_apply(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                   const bf16* x, bf16* y,
                 const uint64_t* first_offset = nullptr);
// The residual connection after a dropout, in the same pass: y[i] = residual[i] + (x[i]·keep_scale if
// kept, else 0), the product rounded to the element type first — the bits of dropout_apply then an
// add, one read and one write of an activation fewer.
void dropout_add(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                 const float* x, const float* residual, float* y,
                 const uint64_t* first_offset = nullptr);
void dropout_add(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                 const bf16* x, const bf16* residual, bf16* y,
                 const uint64_t* first_offset = nullptr);

}  // namespace vts::cuda
