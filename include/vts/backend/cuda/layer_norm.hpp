#pragma once
// LayerNorm over contiguous rows, forward and backward, with the signatures of
// vts::cpu::layer_norm_rows / layer_norm_rows_backward (backend/cpu/rowwise.hpp), plus a fused
// residual-add variant for the pre-norm transformer block.
//
//   y = (x − μ)·rstd·w + b,   rstd = 1/√(var + eps), biased variance; μ and rstd saved per row.
//   backward, with x̂ = (x − μ)·rstd and ĝ = g∘w:
//     dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ∘x̂)),  dw = Σ_rows g∘x̂,  db = Σ_rows g.
//   dx, dw, db are written (not accumulated); any of them may be null to skip it.
//
// bf16: x, w, b, y, g, dx are bf16; μ, rstd, eps are fp32, and the parameter gradients dw, db
// fp32 or bf16 (overloads); all arithmetic is fp32.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

void layer_norm_rows(Device, const float* x, const float* w, const float* bias, float* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps);
void layer_norm_rows(Device, const bf16* x, const bf16* w, const bf16* bias, bf16* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps);

// s = x + residual (written to `sum`, the block's residual stream), then y = LayerNorm(s). The
// statistics are those of s as stored (rounded to T), so the backward pass, which reads `sum`,
// sees the same numbers.
void layer_norm_residual_rows(Device, const float* x, const float* residual, float* sum, const float* w,
                              const float* bias, float* y, float* mean, float* rstd, int64_t rows, int64_t n,
                              float eps);
void layer_norm_residual_rows(Device, const bf16* x, const bf16* residual, bf16* sum, const bf16* w, const bf16* bias,
                              bf16* y, float* mean, float* rstd, int64_t rows, int64_t n, float eps);

void layer_norm_rows_backward(Device, const float* x, const float* w, const float* mean, const float* rstd,
                              const float* g, float* dx, float* dw, float* db, int64_t rows, int64_t n);
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, float* dw, float* db, int64_t rows, int64_t n);
// The same with dw and db rounded to bf16 once, from the same fp32 sums: what a bf16 network's
// parameter gradients are, without a conversion launch for each (2 per LayerNorm and step).
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, bf16* dw, bf16* db, int64_t rows, int64_t n);
// The backward for an input that already has a gradient (the residual stream's): dx = dx_add + the
// LayerNorm gradient, each element rounded as the separate add would round it (the LayerNorm
// gradient to T first). dx_add may be dx (in place). One pass instead of the backward plus a sum.
void layer_norm_rows_backward_add(Device, const float* x, const float* w, const float* mean, const float* rstd,
                                  const float* g, const float* dx_add, float* dx, float* dw, float* db, int64_t rows,
                                  int64_t n);
void layer_norm_rows_backward_add(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                                  const bf16* g, const bf16* dx_add, bf16* dx, bf16* dw, bf16* db, int64_t rows,
                                  int64_t n);

// How many rows each warp of the forward's fast path (rows of n ≤ 256 packs of 16 bytes, aligned)
// normalises, for the kernel benchmark, which times the alternative to the default (docs/cuda.md:
// the bf16 forward reaches 77 % of copy bandwidth at 6,304 × 768, a grid of 1.2 waves, and 80 % at
// 1,600 rows, one wave). The library uses the default unless set_layer_norm_forward_launch (below)
// says otherwise. Other values are refused.
struct LayerNormForwardLaunch {
  int rows_per_warp = 1;  // 1 or 2: 2 halves the grid and puts two rows' loads in flight per warp
};
void layer_norm_rows(Device, const float* x, const float* w, const float* bias, float* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps, const LayerNormForwardLaunch& launch);
void layer_norm_rows(Device, const bf16* x, const bf16* w, const bf16* bias, bf16* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps, const LayerNormForwardLaunch& launch);

// The launch shape of the backward's fast path (rows of n ≤ 256 packs of 16 bytes, aligned), for
// the kernel benchmark, which times alternatives to the defaults (docs/cuda.md: the dw/db partial
// rows are a fixed cost the backward has not yet paid down). The library uses the defaults unless
// set_layer_norm_backward_launch (below) says otherwise.
// A value outside the listed ones is refused. Rows on the generic path ignore it.
struct LayerNormBackwardLaunch {
  int warps_per_block = 8;  // 4, 8 or 16: rows in flight per block, and warps adding into its partial row
  int blocks_per_sm = 2;    // grid = min(row groups, blocks_per_sm × SMs) = the number of partial rows
  int final_groups = 16;    // 8, 16 or 32: thread rows per block of the kernel that adds the partial rows
  // Each warp copies its next row of x and g into shared memory (cp.async) while it works on the
  // current one; refused where the staging slots do not fit the device's shared memory.
  bool prefetch_rows = false;
  // Where the partial rows are too many for the small problems' in-kernel sum (ViT-B: 264 rows of
  // 1,536 floats), add them in the backward kernel anyway, in two levels: the blocks in final_groups
  // classes (block index mod final_groups), each class summed by its last block to arrive, then the
  // classes by the last class. The final kernel's sums bit for bit, without its launch. With 8
  // warps a block only (its own kernel instantiations); refused with others.
  bool fold_by_class = false;
  // Each warp adds its rows' dw/db terms into its slice of shared memory (the slice the default
  // fills from registers at the end) instead of keeping them in 2 × 24 registers a lane (ViT-B,
  // n = 768): ptxas then needs fewer registers (80 instead of 125), so 3 blocks fit an SM
  // (blocks_per_sm 3; 4 would need 64) and more rows' loads are in flight. The same sums in the
  // same order: at the default shape, the default's dw/db bits. With 8 warps a block and without
  // prefetch_rows (whose staging slots would take the shared memory the extra blocks need);
  // refused otherwise.
  bool shared_sums = false;
};
void layer_norm_rows_backward(Device, const float* x, const float* w, const float* mean, const float* rstd,
                              const float* g, float* dx, float* dw, float* db, int64_t rows, int64_t n,
                              const LayerNormBackwardLaunch& launch);
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, float* dw, float* db, int64_t rows, int64_t n,
                              const LayerNormBackwardLaunch& launch);

// The launches the overloads without a launch argument take — those the ops call — so that a
// candidate can be timed in a whole training step (vts_bench_train --layer-norm) before it becomes
// the default. Process-wide, for launches after the call (the plain and the residual forward, every
// backward overload); refused (and nothing changed) where the launch itself would be.
void set_layer_norm_forward_launch(const LayerNormForwardLaunch& launch);
LayerNormForwardLaunch layer_norm_forward_launch();
void set_layer_norm_backward_launch(const LayerNormBackwardLaunch& launch);
LayerNormBackwardLaunch layer_norm_backward_launch();

}  // namespace vts::cuda
