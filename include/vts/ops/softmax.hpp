#pragma once
// Softmax family and the classification losses built on it.
//   softmax(x, axis) / log_softmax(x, axis): same shape; saves the output.
//   cross_entropy(logits [B, C], targets: B class indices) -> [] mean over the batch, fused with
//     its own backward (softmax − one-hot)/B; saves the softmax.
//   binary_cross_entropy(p, t) -> [] mean of −[t·log p + (1−t)·log(1−p)] with each log clamped at
//     −100 and PyTorch's backward (p − t)/max(p(1−p), 1e-12); saves p and t. On the CPU a p outside
//     [0, 1] (or NaN) is refused, as PyTorch refuses it; on CUDA it is not checked (that would cost
//     a host sync per call) and gives a NaN loss.
//   csq_loss(u, c, λ) -> [] CSQ's objective from raw codes u and centers c (fn::CsqTerm): mean of
//     BCE((tanh u + 1)/2, (c + 1)/2) + λ·(|tanh u| − 1)², the composite of hashing-spec §2.5 in one
//     elementwise pass (the composite took ~25 launches a step on CUDA, this takes 5); saves u and c,
//     recomputes tanh in the backward. The centers are constants.
// On CUDA both losses run the fused kernels of backend/cuda/softmax.hpp, and their backward passes
// take the upstream gradient as a device scalar instead of reading it on the host.
#include <cmath>
#include <type_traits>
#include <vector>

#include "vts/backend/cpu/rowwise.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/elementwise.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/reduce.hpp"
#include "vts/backend/cuda/softmax.hpp"
#include "vts/backend/cuda/upload.hpp"  // copy_from_host_staged
#endif

namespace vts {

namespace detail {
template <class T, class D>
Tensor<T, D> softmax_impl(const Tensor<T, D>& x, int axis, bool log_y) {
  VTS_CHECK_SHAPE(x.ndim() > 0, log_y ? "log_softmax" : "softmax",
                  ": expected a tensor with at least one axis, found a 0-d tensor (reshape it to [1])");
  axis = x.shape().normalize_axis(axis);
  if (axis != x.ndim() - 1) {
    // Softmax over another axis: move it last, compute, move it back (views; one copy).
    return softmax_impl(x.transpose(axis, -1), -1, log_y).transpose(axis, -1);
  }
  const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(n, 1);
  Tensor<T, D> xc = x.contiguous_nograd();
  Tensor<T, D> y = Tensor<T, D>::empty(x.shape());
  softmax_rows(D{}, xc.data(), y.data(), rows, n, log_y);
  return record(y, log_y ? "log_softmax" : "softmax", {&x}, [saved_y = Saved(y), rows, n, log_y](const Tensor<T, D>& g) {
    const Tensor<T, D>& yd = saved_y.get();
    Tensor<T, D> gc = g.contiguous_nograd();
    Tensor<T, D> dx = Tensor<T, D>::empty(yd.shape());
    softmax_rows_backward(D{}, yd.data(), gc.data(), dx.data(), rows, n, log_y);
    return std::vector<Tensor<T, D>>{dx};
  });
}
}  // namespace detail

template <class T, class D>
Tensor<T, D> softmax(const Tensor<T, D>& x, int axis = -1) {
  return detail::softmax_impl(x, axis, false);
}
template <class T, class D>
Tensor<T, D> log_softmax(const Tensor<T, D>& x, int axis = -1) {
  return detail::softmax_impl(x, axis, true);
}

template <class T, class D>
Tensor<T, D> cross_entropy(const Tensor<T, D>& logits, const std::vector<int64_t>& targets) {
  VTS_CHECK_SHAPE(logits.ndim() == 2, "cross_entropy: logits must be [batch, classes], found ",
                  logits.shape().str());
  const int64_t B = logits.size(0), C = logits.size(1);
  VTS_CHECK_SHAPE(static_cast<int64_t>(targets.size()) == B, "cross_entropy: ", targets.size(),
                  " targets for a batch of ", B);
  if constexpr (is_cpu_v<D>) {
    Tensor<T, D> xc = logits.contiguous_nograd();
    Tensor<T, D> p = Tensor<T, D>::empty(logits.shape());
    softmax_rows(D{}, xc.data(), p.data(), B, C, true);  // log-probabilities
    T loss = 0;
    for (int64_t i = 0; i < B; ++i) {
      const int64_t t = targets[static_cast<size_t>(i)];
      VTS_CHECK(t >= 0 && t < C, "cross_entropy: target ", t, " at row ", i, " is outside [0, ", C, ")");
      loss -= p.data()[i * C + t];
    }
    Tensor<T, D> out = Tensor<T, D>::scalar(loss / T(B));
    return record(out, "cross_entropy", {&logits}, [p, targets, B, C](const Tensor<T, D>& g) {
      const T scale = g.item() / T(B);
      Tensor<T, D> dx = Tensor<T, D>::empty(Shape{B, C});
      const T* lp = p.data();
      T* d = dx.data();
      for (int64_t i = 0; i < B * C; ++i) d[i] = std::exp(lp[i]) * scale;
      for (int64_t i = 0; i < B; ++i) d[i * C + targets[static_cast<size_t>(i)]] -= scale;
      return std::vector<Tensor<T, D>>{dx};
    });
  } else {
    // One fused kernel: per-row losses and, when a gradient is wanted, (softmax − onehot)/B. The
    // backward pass only scales that by the upstream gradient on the device: no host round-trip.
    for (int64_t i = 0; i < B; ++i) {
      const int64_t t = targets[static_cast<size_t>(i)];
      VTS_CHECK(t >= 0 && t < C, "cross_entropy: target ", t, " at row ", i, " is outside [0, ", C, ")");
    }
    Tensor<T, D> xc = logits.contiguous_nograd();
    Storage<D> device_targets(static_cast<size_t>(B) * sizeof(int64_t));
    const size_t target_bytes = static_cast<size_t>(B) * sizeof(int64_t);
    // Staged where the backend can (CUDA): the host need not wait for the queued forward pass.
    if constexpr (requires { copy_from_host_staged(D{}, device_targets.data(), targets.data(), target_bytes); })
      copy_from_host_staged(D{}, device_targets.data(), targets.data(), target_bytes);
    else
      copy_from_host(D{}, device_targets.data(), targets.data(), target_bytes);
    const bool want_grad = detail::any_requires_grad<T, D>({&logits});
    Tensor<T, D> dlogits = want_grad ? Tensor<T, D>::empty(Shape{B, C}) : Tensor<T, D>();
    Tensor<float, D> row_loss = Tensor<float, D>::empty(Shape{B}), total = Tensor<float, D>::empty(Shape{});
    cross_entropy_fused(D{}, xc.data(), static_cast<const int64_t*>(device_targets.data()), B, C, row_loss.data(),
                        want_grad ? dlogits.data() : nullptr, 1.0f / static_cast<float>(B));
    sum_all(D{}, row_loss.data(), B, total.data());
    Tensor<T, D> out = cast<T>(map(total, fn::MulScalar<float>{1.0f / static_cast<float>(B)}));
    return record(out, "cross_entropy", {&logits}, [dlogits](const Tensor<T, D>& g) {
      return std::vector<Tensor<T, D>>{map(dlogits, g, fn::Mul{})};
    });
  }
}

template <class T, class D>
Tensor<T, D> binary_cross_entropy(const Tensor<T, D>& p, const Tensor<T, D>& target) {
  VTS_CHECK_SHAPE(p.shape() == target.shape(), "binary_cross_entropy: input shape ", p.shape().str(),
                  " differs from target shape ", target.shape().str());
  const int64_t n = p.numel();
  if constexpr (is_cpu_v<D>) {
    {
      // log p of a p outside [0, 1] is NaN, and a NaN loss says nothing of where it came from.
      const Tensor<T, D> pc = p.contiguous_nograd();
      const T* v = pc.data();
      for (int64_t i = 0; i < n; ++i)
        if (!(static_cast<float>(v[i]) >= 0.0f && static_cast<float>(v[i]) <= 1.0f))
          throw Error(vts::detail::concat("binary_cross_entropy: expected every probability in [0, 1], found ",
                                          static_cast<double>(v[i]), " at element ", i, " of ", n,
                                          " (p must be a probability: apply sigmoid to logits first)"));
    }
    auto elementwise = map(p, target, fn::BceLoss{});
    // `elementwise` is outside the graph, so this mean records nothing; the node below is the op.
    Tensor<T, D> out = mean(elementwise);
    return record(out, "binary_cross_entropy", {&p, &target},
                  [pd = Saved(p), td = Saved(target), n](const Tensor<T, D>& g) {
                    const T scale = g.item() / T(n);
                    Tensor<T, D> dp = map(pd.get(), td.get(), fn::BceGrad<T>{scale});
                    return std::vector<Tensor<T, D>>{dp, Tensor<T, D>()};  // targets are constants
                  });
  } else {
    static_assert(std::is_same_v<T, float>, "binary_cross_entropy on CUDA: the fused kernels take fp32");
    // Fused kernels; the backward pass reads the upstream gradient on the device (no g.item()).
    Tensor<T, D> pc = p.contiguous_nograd(), tc = target.contiguous_nograd();
    Tensor<T, D> elementwise = Tensor<T, D>::empty(Shape{n}), total = Tensor<T, D>::empty(Shape{});
    bce_forward(D{}, pc.data(), tc.data(), elementwise.data(), n);
    sum_all(D{}, elementwise.data(), n, total.data());
    Tensor<T, D> out = map(total, fn::MulScalar<T>{T(1) / static_cast<T>(n)});
    return record(out, "binary_cross_entropy", {&p, &target}, [saved_p = Saved(pc), saved_t = Saved(tc), n, shape = p.shape()](const Tensor<T, D>& g) {
      const Tensor<T, D>& pc = saved_p.get();
      const Tensor<T, D>& tc = saved_t.get();
      Tensor<T, D> dp = Tensor<T, D>::empty(shape);
      bce_backward(D{}, pc.data(), tc.data(), g.data(), T(1) / static_cast<T>(n), dp.data(), n);
      return std::vector<Tensor<T, D>>{dp, Tensor<T, D>()};  // targets are constants
    });
  }
}

template <class T, class D>
Tensor<T, D> csq_loss(const Tensor<T, D>& u, const Tensor<T, D>& centers, T lambda) {
  VTS_CHECK_SHAPE(u.shape() == centers.shape(), "csq_loss: codes shape ", u.shape().str(), " differs from centers shape ",
                  centers.shape().str());
  const int64_t n = u.numel();
  // `terms` is outside the graph (map records nothing), so neither is its mean; the node is below.
  Tensor<T, D> out = mean(map(u, centers, fn::CsqTerm<T>{lambda}));
  return record(out, "csq_loss", {&u, &centers}, [saved_u = Saved(u), saved_c = Saved(centers), lambda, n](const Tensor<T, D>& g) {
    const Tensor<T, D>& ud = saved_u.get();
    const Tensor<T, D>& cd = saved_c.get();
    if constexpr (is_cpu_v<D>) {
      return std::vector<Tensor<T, D>>{map(ud, cd, fn::CsqGrad<T>{lambda, g.item() / T(n)}), Tensor<T, D>()};
    } else {  // the upstream gradient stays on the device: one more pass instead of a sync
      Tensor<T, D> du = map(ud, cd, fn::CsqGrad<T>{lambda, T(1) / T(n)});
      return std::vector<Tensor<T, D>>{map(du, g, fn::Mul{}), Tensor<T, D>()};
    }
  });
}

}  // namespace vts
