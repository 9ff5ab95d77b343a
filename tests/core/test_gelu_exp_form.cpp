// The exp-form GELU (core/gelu_exp_form.hpp) against the exact function in long double, at every
// finite bf16 input and on a dense fp32 grid. These run the host side of the header (correctly
// rounded 1/y and 2^y, with 2^y flushed below 2^−126 as the device's exp2 flushes it, which hid a
// device-only miss at x ≈ −13 until the first H200 run); the CUDA test [gelu] checks the device
// side, whose two MUFU instructions add 1–2 ulp, against the CPU.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "../common/exact_gelu.hpp"
#include "vts/core/dtype.hpp"
#include "vts/core/gelu_exp_form.hpp"

using namespace vts;
using vts_test_common::exact_gelu;
using vts_test_common::exact_gelu_grad;

namespace {
float round_bf16(float v) { return static_cast<float>(bf16(v)); }
}  // namespace

TEST_CASE("gelu exp form: every finite bf16 input gives the correctly rounded bf16 GELU and derivative",
          "[gelu]") {
  const auto xs = vts_test_common::finite_bf16_values();
  const int inputs = static_cast<int>(xs.size());
  int wrong = 0, wrong_grad = 0, wrong_erf_formula = 0;
  for (const float x : xs) {
    const float want = round_bf16(static_cast<float>(exact_gelu(x)));
    const float got = round_bf16(fn::gelu_exp_form(x));
    if (got != want) {
      ++wrong;
      UNSCOPED_INFO("GELU(" << x << "): got " << got << ", want " << want);
    }
    const float want_grad = round_bf16(static_cast<float>(exact_gelu_grad(x)));
    const float got_grad = round_bf16(fn::gelu_grad_exp_form(x));
    if (got_grad != want_grad) {
      ++wrong_grad;
      UNSCOPED_INFO("GELU'(" << x << "): got " << got_grad << ", want " << want_grad);
    }
    if (round_bf16(fn::Gelu{}(x)) != want) ++wrong_erf_formula;
  }
  CHECK(inputs == 65536 - 256);  // all but ±∞ and the 254 NaNs
  // For comparison, not checked: ½x(1 + erf(x/√2)) in fp32 misses 197 (cancellation in the lower tail).
  INFO("the erf formula in fp32 misses " << wrong_erf_formula << " of " << inputs);
  CHECK(wrong == 0);
  CHECK(wrong_grad == 0);
}

TEST_CASE("gelu exp form: relative error on a dense fp32 grid, and the derivative", "[gelu]") {
  // Φ's error grows in the lower tail with the rounding of −x²/2 · log2 e (the header's figures).
  auto bound = [](float x) { return x >= -3.0f ? 1e-6 : x >= -6.0f ? 3e-6 : 1.2e-5; };
  double worst_grad = 0.0;
  for (float x = -13.0f; x <= 8.0f; x += 1.0f / 1024.0f) {
    const long double want = exact_gelu(x);
    if (want != 0.0L) {
      const double rel = static_cast<double>(std::fabs((fn::gelu_exp_form(x) - want) / want));
      if (!(rel <= bound(x))) FAIL("GELU(" << x << "): relative error " << rel << " above " << bound(x));
    }
    // The derivative crosses 0 near x = −0.75, so its error is absolute (it lies in [−0.17, 1.13]).
    worst_grad = std::max(worst_grad, static_cast<double>(std::fabs(fn::gelu_grad_exp_form(x) - exact_gelu_grad(x))));
  }
  CHECK(worst_grad < 1e-6);
}

TEST_CASE("gelu exp form: zero, infinities and NaN", "[gelu]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(fn::gelu_exp_form(0.0f) == 0.0f);
  CHECK(fn::gelu_grad_exp_form(0.0f) == Approx(0.5f).epsilon(1e-7));
  CHECK(fn::gelu_exp_form(inf) == inf);
  CHECK(std::fabs(fn::gelu_exp_form(-inf)) < 1e-40f);  // past the clamp: a denormal at most
  CHECK(std::isnan(fn::gelu_exp_form(nan)));
  CHECK(std::isnan(fn::gelu_grad_exp_form(nan)));
  // Far in the tails: the identity above, zero (or a denormal) below (Φ(−14) < 1e-44).
  CHECK(fn::gelu_exp_form(20.0f) == 20.0f);
  CHECK(std::fabs(fn::gelu_exp_form(-20.0f)) < 1e-40f);
}
