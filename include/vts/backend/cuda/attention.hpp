#pragma once
// Fused scaled-dot-product attention, forward and backward, FlashAttention-style: no N×N matrix
// ever reaches device memory; the forward pass saves the row log-sum-exp and the backward pass
// recomputes the probabilities from it. The signatures are those of vts::cpu::attention_forward /
// attention_backward (backend/cpu/attention.hpp), with the same HeadLayout (core/layout.hpp) — element
// (b, h, n, i) of an operand at data[b*sb + h*sh + n*sn + i] — so the packed ViT qkv layout
// [B, N, 3·H·d] is read, and its gradient written, in place.
//
//   o = softmax(scale · q kᵀ) v per (b, h);  lse[(b·H + h)·N + n] = log Σ_j exp(scale · q_n·k_j)
//   backward: dq, dk, dv are written (not accumulated).
//
// fp32: SIMT kernels (FFMA), full fp32 accuracy; float lse.
// bf16: tensor-core kernels (mma.sync m16n8k16, fp32 accumulation); the scale and lse are fp32.
//
// Requirements (checked; a violation throws vts::Error saying which): head dim d ∈ {16, 32, 64, 128}
// (bf16 backward: d ∈ {16, 32, 64}); every row 16-byte aligned (data pointers aligned, sn, sh, sb
// multiples of 4 floats / 8 bf16). Any N. attention_supported() answers before calling.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/layout.hpp"

namespace vts::cuda {

void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const float> q,
                       HeadLayout<const float> k, HeadLayout<const float> v, HeadLayout<float> o, float* lse);
void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const bf16> q,
                       HeadLayout<const bf16> k, HeadLayout<const bf16> v, HeadLayout<bf16> o, float* lse);

void attention_backward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const float> q,
                        HeadLayout<const float> k, HeadLayout<const float> v, HeadLayout<const float> o,
                        const float* lse, HeadLayout<const float> dout, HeadLayout<float> dq, HeadLayout<float> dk,
                        HeadLayout<float> dv);
void attention_backward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const bf16> q,
                        HeadLayout<const bf16> k, HeadLayout<const bf16> v, HeadLayout<const bf16> o,
                        const float* lse, HeadLayout<const bf16> dout, HeadLayout<bf16> dq, HeadLayout<bf16> dk,
                        HeadLayout<bf16> dv);

enum class AttentionDtype { f32, bf16 };
// Query rows per block of the bf16 forward kernel: 64 (4 warps) or 128 (8 warps; d ≤ 64 — each
// block reads its head's whole K/V, so 128 halves those reads at N = 197), or 0 for the default.
// Process-wide; for benchmarks and tests. Anything else throws vts::Error.
void set_attention_bf16_forward_rows(int rows);
int attention_bf16_forward_rows();
// Query rows per warp of the bf16 forward kernel: 16 (one m16 tile) or 32 (two, d ≤ 64: every K and
// V fragment a warp loads from shared memory feeds twice the MMAs, for more registers: fewer warps
// per SM), or 0 for the default (16). With 32, a block of 64 rows has 2 warps and one of 128 has 4.
// Process-wide; for benchmarks and tests. Anything else throws vts::Error.
void set_attention_bf16_forward_warp_rows(int rows);
int attention_bf16_forward_warp_rows();
// With the default layout (64 rows a block, 16 a warp), a key tile with at most 16 keys before N
// (the last of N = 197's four) does the math of 16 keys instead of 64: the same results bit for
// bit (the keys left out are masked ones, probability exactly 0), 19 % fewer MMAs at N = 197.
// false (the default) until a device has timed it. Process-wide; for benchmarks and tests.
void set_attention_bf16_forward_narrow_last_tile(bool on);
bool attention_bf16_forward_narrow_last_tile();
// With the default layout at d = 64, the key mask (a compare and a select per score) only in a last
// tile that reaches past N; tiles of 64 keys before N run a copy without it. The same results bit
// for bit. Combines with the narrow last tile. false (the default) until a device has timed it;
// other head dims ignore it. Process-wide; for benchmarks and tests.
void set_attention_bf16_forward_mask_last_tile_only(bool on);
bool attention_bf16_forward_mask_last_tile_only();
// With the default layout at d = 64, each thread issues its cp.async copies of a Q or K/V tile
// from a fully unrolled loop with one base address (the default's loop has a trip count nvcc cannot
// see, so it keeps remainder code and a 64-bit address computation per copy: about 220 of a key
// tile's instructions). The same copies, the same results. false (the default) until a device has
// timed it; other head dims ignore it. Process-wide; for benchmarks and tests.
void set_attention_bf16_forward_unrolled_loads(bool on);
bool attention_bf16_forward_unrolled_loads();
// With the default layout at d = 64 and a positive scale, the scale applied inside each
// exponential's FFMA (exp2(c·s − max) from unscaled scores; a tile's maximum of c·s is c times its
// largest score): one instruction a score fewer. Within bf16 tolerance, not the default's bits.
// Combines with the three above. false (the default) until a device has timed it; other head dims
// and scales ≤ 0 ignore it. Process-wide; for benchmarks and tests.
void set_attention_bf16_forward_fold_scale(bool on);
bool attention_bf16_forward_fold_scale();
// The four switches above by name — the kernel benchmark's row names (vts_<name>1) and
// vts_bench_train's --attention-fwd list — so a name maps to one setter in one place.
struct AttentionForwardSwitch {
  const char* name;
  void (*set)(bool);
  bool (*get)();
};
inline constexpr AttentionForwardSwitch kAttentionForwardSwitches[] = {
    {"narrow_last", set_attention_bf16_forward_narrow_last_tile, attention_bf16_forward_narrow_last_tile},
    {"mask_last", set_attention_bf16_forward_mask_last_tile_only, attention_bf16_forward_mask_last_tile_only},
    {"unrolled_loads", set_attention_bf16_forward_unrolled_loads, attention_bf16_forward_unrolled_loads},
    {"fold_scale", set_attention_bf16_forward_fold_scale, attention_bf16_forward_fold_scale}};
// The Hopper forward (wgmma, built for sm_90a): a head's whole K and V in shared memory, S for all
// keys at once, the softmax in one pass. Taken where it applies — d = 64, N ≤ 256, a device of
// compute capability 9.0 (H100, H200) — when on; false (the default) until a device has timed it.
// Its results are within bf16 tolerance of the mma.sync kernel's, not its bits (one softmax pass
// against per-tile rescaling). Process-wide; for benchmarks and tests.
void set_attention_bf16_forward_wgmma(bool on);
bool attention_bf16_forward_wgmma();
// Blocks per SM the Hopper forward's registers are held to: 2, 3 (12 warps an SM instead of 8, at
// 168 registers with a small spill), or 0 for the default (2). Process-wide; for benchmarks and
// tests. Anything else throws vts::Error.
void set_attention_bf16_forward_wgmma_blocks(int blocks);
int attention_bf16_forward_wgmma_blocks();
// Whether the Hopper kernels (forward and backward) take this shape on the current device: d = 64,
// N ≤ 256, compute capability 9.0. Where not, the settings above and below change nothing.
bool attention_bf16_wgmma_supported(int64_t N, int64_t d);
namespace detail {
// For the tests: the wgmma operand layouts the Hopper kernels rely on, on the device. a: 64×16 and
// b: 16×16 bf16 bits, row-major, device memory; d: kWgmmaLayoutChecks products D = a·b (64×16 fp32,
// row-major, one after another) computed by wgmma with the operands as the kernels lay them out —
// [0] both from shared memory with b K-major, [1] the same with b MN-major, [2] a from registers —
// then, for a diagnosis where those fail, read with each descriptor's leading and stride byte
// offsets exchanged: [3] as [0], [4] as [1]. Compute capability 9.0 only (throws CudaError
// elsewhere: no code for it).
inline constexpr int kWgmmaLayoutChecks = 5;
void wgmma_layout_check(const uint16_t* a, const uint16_t* b, float* d);
}  // namespace detail
// Barriers per query block of the bf16 backward kernel: 2 (phase 2 of a block waits for all warps'
// phase 1), 1 (it runs behind the next block's phase 1, from a second dSᵀ buffer: 17 KB more shared
// memory at N = 197), or 0 for the default (2). Process-wide; for benchmarks and tests. Anything
// else throws vts::Error.
void set_attention_bf16_backward_barriers(int barriers);
int attention_bf16_backward_barriers();
// The bf16 backward has two layouts: one CTA per (b, h) holding the head's whole K and V in shared
// memory (N ≤ 256: ViT at 224 px, N = 197 for /16 and 50 for /32), and a split one — a dQ kernel
// over query blocks, then a dK/dV kernel over key blocks — for any N. false (the default): the
// split layout only where N > 256; true: at every N. Process-wide; for benchmarks and tests.
void set_attention_bf16_backward_split(bool always);
bool attention_bf16_backward_split();
// The Hopper backward (wgmma, built for sm_90a): the split layout's two kernels — dQ over query
// blocks, dK/dV over key blocks — each holding the head's other side in shared memory, every
// product a few warpgroup MMAs. Taken, ahead of the settings above, where it applies (d = 64,
// N ≤ 256, compute capability 9.0) when on; false (the default) until a device has timed it.
// Deterministic (no atomics); within bf16 tolerance of the other layouts, not their bits.
void set_attention_bf16_backward_wgmma(bool on);
bool attention_bf16_backward_wgmma();

// fp32 attention in the op layer (vts::attention, vts::self_attention_packed) from the composite
// ops — matmul, softmax, matmul, the path of the shapes no fused kernel takes — instead of the fused
// SIMT kernels. Its GEMMs then follow the fp32 GEMM mode (TF32 by default, as the linear layers';
// full fp32 with set_tf32(false)), at the cost of the N × N probabilities kept for the backward
// (B·H·N² floats a layer: 60 MB at ViT-B/16, batch 32). false (the default) until a device has timed
// it in the training step. Process-wide; for benchmarks and tests.
void set_attention_f32_composite(bool on);
bool attention_f32_composite();
// The fused fp32 kernels (forward and backward) leave out the work that padding N to whole 64-row
// tiles adds: warps whose rows all lie past N skip their tile products, and a tile with at most 16
// rows before N is computed over 16. The same results bit for bit (what is left out is exactly 0);
// ≈ 37 % fewer FMAs at N = 197, 12 % at N = 50, none at N = 64. false (the default) until a device has timed
// it. Process-wide; for benchmarks and tests.
void set_attention_f32_skip_padding(bool on);
bool attention_f32_skip_padding();

// Whether the fused kernels take this problem (shape limits only; alignment is checked per call).
bool attention_supported(AttentionDtype dtype, bool backward, int64_t N, int64_t d);

}  // namespace vts::cuda
