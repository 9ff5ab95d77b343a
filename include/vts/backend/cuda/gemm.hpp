#pragma once
// GEMM through cuBLASLt with the MatrixRef convention (core/layout.hpp) of vts::cpu::gemm:
//   C = alpha · A·B + beta · C,  C row-major (M × N, leading dimension ldc ≥ N);
//   A (M × K) and B (K × N) are MatrixRefs, row- or column-major with any leading stride (a
//   transpose is a free change of layout), element stride 1 inside a row or a column.
// beta = 0 never reads C (it may hold NaN).
//
// Precision: fp32 operands use TF32 tensor cores by default (set_tf32(false) for full fp32, e.g.
// for parity checks: TF32 rounds operands to 10 mantissa bits, ≈ 1e-3 relative error;
// set_fp32_gemm(Fp32Gemm::bf16) for bf16 tensor cores on fp32 data);
// bf16 operands use bf16 tensor cores with fp32 accumulation; C may be bf16 or fp32 (the fp32
// form is what weight gradients for fp32 master weights want).
#include <cstdint>
#include <string>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/layout.hpp"

namespace vts::cuda {

void gemm(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc, float alpha,
          float beta);
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc, float alpha, float beta);
void gemm(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, float* c, int64_t ldc, float alpha, float beta);

// The op layer writes gemm(D{}, ..., T(1), T(0)); with T = bf16 the scalars arrive as bf16.
inline void gemm(Device d, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc, bf16 alpha,
                 bf16 beta) {
  gemm(d, a, b, c, ldc, static_cast<float>(alpha), static_cast<float>(beta));
}

// C = A·B + bias in every row (bias[j] added to column j; the linear layer's x·Wᵀ + b), the bias
// added in cuBLASLt's epilogue to the fp32 accumulator, before C's rounding: C is written once and
// never read (seeding C with the bias and using beta = 1 costs a launch, a write and a read of C).
// Where cuBLASLt offers no algorithm with the epilogue, the seeded form is the fallback.
void gemm_bias(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, const float* bias, float* c,
               int64_t ldc);
void gemm_bias(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, const bf16* bias, bf16* c, int64_t ldc);

// C = A·B and a_row_sums[i] = Σ_k A(i, k) (a linear layer's weight gradient gᵀ·x and its bias
// gradient, the row sums of gᵀ), the sums taken by cuBLASLt's bias-gradient epilogue from the
// operand it already reads: no second pass over g and no reduction kernels. A must be stored
// densely, row- or column-major (row_sum_shape in core/layout.hpp). Fallback where cuBLASLt has
// no algorithm for it: the product, then sum_middle.
void gemm_row_sums(Device, const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc,
                   float* a_row_sums);
void gemm_row_sums(Device, const MatrixRef<bf16>& a, const MatrixRef<bf16>& b, bf16* c, int64_t ldc,
                   bf16* a_row_sums);
// How many gemm_bias / gemm_row_sums calls so far took the separate passes because cuBLASLt offered
// no algorithm with the epilogue (tests and benchmarks print it; the process's running total).
int64_t gemm_epilogue_fallbacks();
// Whether gemm_bias / gemm_row_sums may use the epilogues (default yes; VTS_GEMM_EPILOGUES=0 in the
// environment switches them off at start-up). Off, they take the separate passes — the way to
// compare the two on a device with the same programs. Refusals while on are what the count counts.
void set_gemm_epilogues(bool allow);
bool gemm_epilogues();

// `batch` products C_i = alpha·A_i·B_i + beta·C_i in one call, operand i starting stride_a,
// stride_b, stride_c elements after operand i − 1 (a stride of 0 for A or B: the same matrix in
// every product). Same precision rules as gemm.
void gemm_strided_batched(Device, const MatrixRef<float>& a, int64_t stride_a, const MatrixRef<float>& b,
                          int64_t stride_b, float* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta);
void gemm_strided_batched(Device, const MatrixRef<bf16>& a, int64_t stride_a, const MatrixRef<bf16>& b,
                          int64_t stride_b, bf16* c, int64_t ldc, int64_t stride_c, int64_t batch, float alpha,
                          float beta);

// How fp32 GEMMs use the tensor cores: full fp32 (no tensor cores), TF32 (the default, like
// torch.backends.cuda.matmul.allow_tf32) or bf16 (cuBLAS's FAST_16BF: operands rounded to bf16
// inside the kernel, fp32 accumulation and fp32 storage — bf16 tensor-core speed for an fp32 model,
// ≈ 4e-3 relative error on random operands).
enum class Fp32Gemm { full, tf32, bf16 };
void set_fp32_gemm(Fp32Gemm mode);
Fp32Gemm fp32_gemm();
const char* to_string(Fp32Gemm mode);
// The inverse of to_string ("fp32", "tf32", "bf16": the --gemm flag's values); throws otherwise.
Fp32Gemm fp32_gemm_from_string(const std::string& name);
// Shorthands for TF32 on / full fp32 (the parity tests' switch).
void set_tf32(bool allow);
bool tf32();

}  // namespace vts::cuda
