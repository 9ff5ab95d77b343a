#pragma once
// Reductions, with the signatures of vts::cpu's (backend/cpu/reduce.hpp), plus a whole-buffer sum
// for the losses. All are deterministic: the same input gives bit-identical output on a given
// device — partial sums are combined in a fixed order, never with floating-point atomics.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

// out[a, c] = Σ_r in[a, r, c] over a contiguous [A, R, C] input (fp32 accumulation).
void sum_middle(Device, const float* in, int64_t A, int64_t R, int64_t C, float* out);
void sum_middle(Device, const bf16* in, int64_t A, int64_t R, int64_t C, bf16* out);

// out[a] = max_r in[a*R + r]; argmax[a] = the first r attaining it; a NaN wins (the first NaN).
void max_rows(Device, const float* in, int64_t A, int64_t R, float* out, int64_t* argmax);

// dx[a*R + where[a]] = g[a], zero elsewhere (the backward of max_rows).
void scatter_rows_at(Device, const float* g, const int64_t* where, int64_t A, int64_t R, float* dx);

// out[i, :] = x[rows[i], :] for i < n: rows of `width` elements, `rows` in device memory (the
// forward of index_select).
void gather_rows(Device, const float* x, const int64_t* rows, int64_t n, int64_t width, float* out);
void gather_rows(Device, const bf16* x, const int64_t* rows, int64_t n, int64_t width, bf16* out);

// Its backward: dx[r, :] = Σ g[k, :] over the k with rows[k] = r, zero for rows never selected. The
// k of row r are order[first[r]] .. order[first[r + 1] − 1] in increasing k (a CSR of the row list,
// built on the host), and each output element sums them in that order: deterministic, no atomics,
// repeated rows included. `first` has n_in + 1 entries; all arrays in device memory.
void gather_rows_backward(Device, const float* g, const int64_t* first, const int64_t* order, int64_t n_in,
                          int64_t width, float* dx);
void gather_rows_backward(Device, const bf16* g, const int64_t* first, const int64_t* order, int64_t n_in,
                          int64_t width, bf16* dx);

// *out = Σ_i x[i] (device pointer out), fp32 accumulation in a fixed tree.
void sum_all(Device, const float* x, int64_t n, float* out);
void sum_all(Device, const bf16* x, int64_t n, float* out);

}  // namespace vts::cuda
