#pragma once
// Row softmax, and the losses built on it, over contiguous [rows, n] buffers.
//
// softmax_rows / softmax_rows_backward: the signatures of vts::cpu's (backend/cpu/rowwise.hpp).
//   log_y = false: y = softmax(x);      backward dx = y ∘ (g − Σ g∘y)
//   log_y = true:  y = log_softmax(x);  backward dx = g − exp(y)·Σ g
//
// Cross-entropy with integer targets, fused (the llm.c "fused classifier" idea): one pass over
// the logits computes each row's loss, and — when dlogits is given — the gradient of
//   L = scale · Σ_rows loss_row,   loss_row = logsumexp(x_row) − x_row[target]
// i.e. dlogits = scale · (softmax(x) − onehot(target)), so the probabilities never exist as a
// separate tensor. For the mean loss, scale = upstream_grad / rows. A target outside [0, C) makes
// that row's loss NaN (and its gradient row NaN) instead of reading out of bounds.
//
// Binary cross-entropy on probabilities, PyTorch's definition (log clamped at −100):
//   loss_i = −(t·max(log p, −100) + (1 − t)·max(log(1 − p), −100)),
//   d loss / d p_i = (p − t) / max((1 − p)·p, 1e-12).
// bce_forward writes the per-element losses (sum them with reduce.hpp's sum_all for the mean);
// bce_backward writes dp = grad_scale[0] · scale · d loss / d p, where grad_scale is a device
// scalar (the upstream gradient, so no host round-trip is needed) and scale is e.g. 1/n.
#include <cstdint>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda {

void softmax_rows(Device, const float* x, float* y, int64_t rows, int64_t n, bool log_y);
void softmax_rows(Device, const bf16* x, bf16* y, int64_t rows, int64_t n, bool log_y);
void softmax_rows_backward(Device, const float* y, const float* g, float* dx, int64_t rows, int64_t n, bool log_y);
void softmax_rows_backward(Device, const bf16* y, const bf16* g, bf16* dx, int64_t rows, int64_t n, bool log_y);

// loss[r] = logsumexp(logits[r]) − logits[r, targets[r]] (fp32); dlogits may be null.
void cross_entropy_fused(Device, const float* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         float* loss, float* dlogits, float scale);
void cross_entropy_fused(Device, const bf16* logits, const int64_t* targets, int64_t rows, int64_t classes,
                         float* loss, bf16* dlogits, float scale);

void bce_forward(Device, const float* p, const float* target, float* loss, int64_t n);
void bce_backward(Device, const float* p, const float* target, const float* grad_scale, float scale, float* dp,
                  int64_t n);

}  // namespace vts::cuda
