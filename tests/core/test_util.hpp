#pragma once
// Helpers shared by the core tests: deterministic random inputs and a Catch wrapper around
// vts::gradcheck that prints the failing element.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <vts/vts.hpp>

namespace vts_test {

using Td = vts::Tensor<double>;
using Tf = vts::Tensor<float>;
using GradFn = std::function<Td(const std::vector<Td>&)>;

// Uniform values in [lo, hi) from the library's own generator, so every run sees the same inputs.
inline Td uniform(const vts::Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  vts::Generator g(seed);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) x = lo + (hi - lo) * g.next_double();
  return Td::from_vector(v, shape);
}

// Uniform values in [lo, hi) that stay at least `margin` away from every kink: finite differences
// across a kink measure an average of the two one-sided slopes, not the derivative.
inline Td away_from(const vts::Shape& shape, uint64_t seed, std::vector<double> kinks, double lo = -2.0,
                    double hi = 2.0, double margin = 0.05) {
  vts::Generator g(seed);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) {
    bool near = true;
    while (near) {
      x = lo + (hi - lo) * g.next_double();
      near = false;
      for (double k : kinks) near = near || std::abs(x - k) < margin;
    }
  }
  return Td::from_vector(v, shape);
}

// Values with magnitude in [lo, hi) and random sign: safe denominators and log/sqrt arguments
// after abs().
inline Td signed_magnitude(const vts::Shape& shape, uint64_t seed, double lo = 0.5, double hi = 2.0) {
  vts::Generator g(seed);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) {
    x = lo + (hi - lo) * g.next_double();
    if (g.next_u32() & 1u) x = -x;
  }
  return Td::from_vector(v, shape);
}

inline Tf to_float(const Td& t) {
  auto v = t.to_vector();
  return Tf::from_vector(std::vector<float>(v.begin(), v.end()), t.shape());
}

// Runs the finite-difference check and reports the first failing element through Catch.
inline void check_grad(const GradFn& f, std::vector<Td> inputs, vts::GradcheckOptions opt = {}) {
  const vts::GradcheckResult r = vts::gradcheck<vts::Cpu>(f, std::move(inputs), opt);
  INFO("gradcheck: " << r.message << " (max abs error " << r.max_abs_error << ")");
  CHECK(r.ok);
}

// Gradient of sum(f(x) * w) with respect to x, the way a loss would reach it.
template <class T>
std::vector<T> grad_of(vts::Tensor<T> x, const vts::Tensor<T>& y, const vts::Tensor<T>& w) {
  x.zero_grad();
  vts::sum(vts::mul(y, w)).backward();
  return x.grad().to_vector();
}

inline void check_values(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
  }
}

}  // namespace vts_test
