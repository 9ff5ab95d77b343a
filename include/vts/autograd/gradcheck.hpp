#pragma once
// Finite-difference gradient check (public API). f maps leaf tensors to any output tensor; the
// check contracts the output with fixed random weights w, so a single backward pass gives the
// whole vector-Jacobian product, and compares d(w·f)/dx against central differences, one input
// element at a time.
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "vts/core/rng.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"

namespace vts {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the first failing element, with analytic and numeric values
};

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

// f is not used to deduce D (a lambda is not a std::function, so deducing from it fails and
// `gradcheck(lambda, {x})` would not compile); D comes from the inputs, or is the CPU by default.
// The inputs are the caller's tensors (handles share them): their requires_grad flags and
// gradients are restored before returning, so a check run on a model's parameters leaves no stray
// gradient for the next optimizer step to apply.
template <class D = Cpu>
GradcheckResult gradcheck(
    const std::type_identity_t<std::function<Tensor<double, D>(const std::vector<Tensor<double, D>>&)>>& f,
    std::vector<Tensor<double, D>> inputs, GradcheckOptions opt = {}) {
  static_assert(is_cpu_v<D>, "gradcheck perturbs host memory; run it on the CPU backend");
  for (const auto& x : inputs)
    VTS_CHECK(x.is_contiguous() && x.is_leaf(), "gradcheck: inputs must be contiguous leaf tensors");
  // Puts the caller's flags and gradients back however the check ends (f may throw).
  struct CallerState {
    std::vector<Tensor<double, D>> tensors, grads;
    std::vector<bool> requires_grad;
    ~CallerState() {
      for (size_t k = 0; k < tensors.size(); ++k) {
        tensors[k].set_grad(grads[k]);
        tensors[k].requires_grad_(requires_grad[k]);
      }
    }
  } caller;
  for (auto& x : inputs) {
    caller.tensors.push_back(x);
    caller.grads.push_back(x.grad());
    caller.requires_grad.push_back(x.requires_grad());
    x.requires_grad_(true);
    x.zero_grad();
  }
  Tensor<double, D> out = f(inputs);
  Generator rng(opt.seed);
  std::vector<double> w(static_cast<size_t>(out.numel()));
  for (double& v : w) v = rng.next_double() * 2.0 - 1.0;
  const auto weights = Tensor<double, D>::from_vector(w, out.shape());
  // An output outside the graph (f detached, or computed it under NoGradGuard) has a zero analytic
  // gradient; the comparison below then reports the mismatch instead of backward() throwing.
  if (out.requires_grad()) sum(mul(out, weights)).backward();

  auto objective = [&]() {
    NoGradGuard guard;
    const auto y = f(inputs).to_vector();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += y[i] * w[i];
    return s;
  };

  GradcheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto& x = inputs[k];
    const Tensor<double, D> g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector() : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    double* p = x.data();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double saved = p[i];
      p[i] = saved + opt.eps;
      const double up = objective();
      p[i] = saved - opt.eps;
      const double down = objective();
      p[i] = saved;
      const double numeric = (up - down) / (2 * opt.eps);
      const double a = analytic[static_cast<size_t>(i)];
      const double err = std::abs(a - numeric);
      // NaN is the largest error (std::max would drop it and report 0 next to a failure).
      if (!std::isnan(result.max_abs_error) && !(err <= result.max_abs_error)) result.max_abs_error = err;
      if (result.ok && !(err <= opt.atol + opt.rtol * std::abs(numeric))) {
        result.ok = false;
        std::ostringstream os;
        os << "input " << k << " element " << i << ": analytic " << a << " vs numeric " << numeric;
        result.message = os.str();
      }
    }
  }
  return result;
}

}  // namespace vts
