// Initialisers: distributions (moments, bounds, tails), PyTorch's fan and gain rules, and
// determinism (seed, thread count, dtype, strided targets).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <thread>
#include <vector>

#include "../common/thread_count.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/nn/init.hpp"

namespace {

using vts::Generator;
using vts::Shape;
using vts::Tensor;
namespace init = vts::nn::init;

struct Moments {
  double mean, var, min, max;
};

template <class T>
Moments moments(const Tensor<T>& t) {
  const auto v = t.to_vector();
  double s = 0, s2 = 0, lo = HUGE_VAL, hi = -HUGE_VAL;
  for (T x : v) {
    s += double(x);
    lo = std::min(lo, double(x));
    hi = std::max(hi, double(x));
  }
  const double mean = s / double(v.size());
  for (T x : v) s2 += (double(x) - mean) * (double(x) - mean);
  return {mean, s2 / double(v.size()), lo, hi};
}

constexpr int64_t kN = int64_t(1) << 20;

// Bitwise equality of two draws, as a bool (Catch would print a million elements on failure).
template <class T>
bool identical(const Tensor<T>& a, const Tensor<T>& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(T)) == 0;
}

// Five standard errors of a sample mean and of a sample variance (using the 4th central moment
// m4) for kN draws: a correct sampler misses these bounds with probability < 1e-6, and the seeds
// are fixed, so a failure means a wrong distribution, not bad luck.
double mean_tol(double var) { return 5.0 * std::sqrt(var / double(kN)); }
double var_tol(double var, double m4) { return 5.0 * std::sqrt((m4 - var * var) / double(kN)); }

}  // namespace

TEST_CASE("uniform_: bounds, moments, determinism", "[init]") {
  Generator g(42);
  auto t = init::uniform_(Tensor<double>::empty(Shape{kN}), -0.5, 1.5, g);
  const Moments m = moments(t);
  const double var = 4.0 / 12.0, m4 = 16.0 / 80.0;  // (b−a)²/12, (b−a)⁴/80
  CHECK(m.min >= -0.5);
  CHECK(m.max < 1.5);
  CHECK(m.min < -0.499);  // the whole interval is reached
  CHECK(m.max > 1.499);
  CHECK(std::fabs(m.mean - 0.5) < mean_tol(var));
  CHECK(std::fabs(m.var - var) < var_tol(var, m4));
  // Two uniforms per 128-bit block: n draws advance the counter by ⌈n/2⌉.
  CHECK(g.offset() == uint64_t(kN / 2));

  Generator same(42), other(43);
  auto t2 = init::uniform_(Tensor<double>::empty(Shape{kN}), -0.5, 1.5, same);
  auto t3 = init::uniform_(Tensor<double>::empty(Shape{kN}), -0.5, 1.5, other);
  CHECK(identical(t, t2));
  CHECK_FALSE(identical(t, t3));
}

TEST_CASE("normal_: moments and tail mass", "[init]") {
  Generator g(7);
  auto t = init::normal_(Tensor<double>::empty(Shape{kN + 1}), 0.25, 2.0, g);  // odd count: last pair half used
  const Moments m = moments(t);
  CHECK(std::fabs(m.mean - 0.25) < mean_tol(4.0));
  CHECK(std::fabs(m.var - 4.0) < var_tol(4.0, 3.0 * 16.0));
  // P(|z| > 2) = 0.0455003; the sample fraction has standard error √(p(1−p)/n).
  const auto v = t.to_vector();
  const double beyond = double(std::count_if(v.begin(), v.end(), [](double x) { return std::fabs(x - 0.25) > 4.0; }));
  const double p = 0.04550026389635842;
  CHECK(std::fabs(beyond / double(v.size()) - p) < 5.0 * std::sqrt(p * (1 - p) / double(v.size())));
  CHECK(g.offset() == uint64_t((kN + 2) / 2));
}

TEST_CASE("trunc_normal_: stays in [a, b] with the truncated moments", "[init]") {
  // Truncated N(μ, σ²) on [a, b], α = (a−μ)/σ, β = (b−μ)/σ, Z = Φ(β) − Φ(α):
  //   mean = μ + σ(φ(α) − φ(β))/Z,  var = σ²[1 + (αφ(α) − βφ(β))/Z − ((φ(α) − φ(β))/Z)²].
  auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); };
  auto Phi = [](double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); };
  struct Case {
    double mean, std, a, b;
  };
  for (const Case c : {Case{0.0, 1.0, -2.0, 2.0}, Case{0.5, 2.0, -1.0, 2.0}, Case{0.0, 0.02, -0.04, 0.04}}) {
    INFO("mean " << c.mean << " std " << c.std << " [" << c.a << ", " << c.b << "]");
    Generator g(99);
    auto t = init::trunc_normal_(Tensor<double>::empty(Shape{kN}), c.mean, c.std, c.a, c.b, g);
    const Moments m = moments(t);
    const double al = (c.a - c.mean) / c.std, be = (c.b - c.mean) / c.std, Z = Phi(be) - Phi(al);
    const double d = (phi(al) - phi(be)) / Z;
    const double mean = c.mean + c.std * d;
    const double var = c.std * c.std * (1.0 + (al * phi(al) - be * phi(be)) / Z - d * d);
    CHECK(m.min >= c.a);
    CHECK(m.max <= c.b);
    CHECK(std::fabs(m.mean - mean) < mean_tol(var));
    // A bounded variable's 4th moment is at most var·(b−a)²/4·… ; (b − a)²·var bounds it simply.
    CHECK(std::fabs(m.var - var) < var_tol(var, (c.b - c.a) * (c.b - c.a) * var));
  }
}

TEST_CASE("erfinv inverts erf to double precision", "[init]") {
  for (double y = -0.999999; y < 1.0; y += 0.0123457) {
    INFO("y = " << y);
    CHECK(std::erf(init::detail::erfinv(y)) == Approx(y).epsilon(1e-14).margin(1e-16));
  }
  CHECK(init::detail::erfinv(0.0) == 0.0);
  CHECK(init::detail::erfinv(1.0 - 1e-12) == Approx(5.042029).epsilon(1e-6));
}

TEST_CASE("fan and gain rules follow PyTorch", "[init]") {
  CHECK(init::fans(Shape{64, 32}).fan_in == 32);
  CHECK(init::fans(Shape{64, 32}).fan_out == 64);
  CHECK(init::fans(Shape{16, 3, 5, 5}).fan_in == 75);
  CHECK(init::fans(Shape{16, 3, 5, 5}).fan_out == 400);
  CHECK_THROWS_WITH(init::fans(Shape{10}), Catch::Contains("at least 2 dimensions"));
  CHECK(init::leaky_relu_gain(0.0) == Approx(std::sqrt(2.0)));
  CHECK(init::leaky_relu_gain(std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
}

TEST_CASE("linear_: PyTorch's nn.Linear default, U(±1/√fan_in) for weight and bias", "[init]") {
  Generator g(5);
  auto w = Tensor<double>::empty(Shape{1024, 256});
  auto b = Tensor<double>::empty(Shape{1024});
  init::linear_(w, b, g);
  const double bound = 1.0 / 16.0;
  const Moments mw = moments(w), mb = moments(b);
  CHECK(mw.min >= -bound);
  CHECK(mw.max <= bound);
  CHECK(mw.max > 0.999 * bound);
  CHECK(std::fabs(mw.var - bound * bound / 3.0) < var_tol(bound * bound / 3.0, std::pow(bound, 4) / 5.0) * 2.0);
  CHECK(mb.min >= -bound);
  CHECK(mb.max <= bound);
  CHECK(mb.max > 0.9 * bound);
  // Weight first, then bias, each ⌈n/2⌉ blocks.
  CHECK(g.offset() == uint64_t(1024 * 256 / 2 + 1024 / 2));
  // The weight is the same stream as uniform_ with PyTorch's bound gain·√(3/fan_in), gain = √(1/3),
  // which equals 1/√fan_in only up to rounding.
  Generator replay(5);
  const double torch_bound = std::sqrt(2.0 / 6.0) * std::sqrt(3.0 / 256.0);
  auto w2 = init::uniform_(Tensor<double>::empty(Shape{1024, 256}), -torch_bound, torch_bound, replay);
  CHECK(identical(w, w2));
}

TEST_CASE("kaiming_uniform_, kaiming_normal_, xavier_uniform_ scale by the right fan", "[init]") {
  Generator g(11);
  // VTS hash-head init: gain √2, fan_out mode → U(±√(6/fan_out)).
  auto w = init::kaiming_uniform_(Tensor<double>::empty(Shape{512, 2048}), std::numbers::sqrt2, init::FanMode::fan_out, g);
  const double bound_out = std::sqrt(6.0 / 512.0);
  Moments m = moments(w);
  CHECK(m.max <= bound_out);
  CHECK(m.max > 0.999 * bound_out);
  CHECK(m.min >= -bound_out);
  auto w_in = init::kaiming_uniform_(Tensor<double>::empty(Shape{512, 2048}), std::numbers::sqrt2, init::FanMode::fan_in, g);
  m = moments(w_in);
  CHECK(m.max <= std::sqrt(6.0 / 2048.0));
  CHECK(m.max > 0.999 * std::sqrt(6.0 / 2048.0));

  auto n = init::kaiming_normal_(Tensor<double>::empty(Shape{256, 4096}), std::numbers::sqrt2, init::FanMode::fan_in, g);
  const double var = 2.0 / 4096.0;
  m = moments(n);
  CHECK(std::fabs(m.var - var) < var_tol(var, 3.0 * var * var));

  auto x = init::xavier_uniform_(Tensor<double>::empty(Shape{768, 3072}), 1.0, g);
  const double xb = std::sqrt(6.0 / (768.0 + 3072.0));
  m = moments(x);
  CHECK(m.max <= xb);
  CHECK(m.max > 0.999 * xb);
  CHECK(std::fabs(m.var - xb * xb / 3.0) < var_tol(xb * xb / 3.0, std::pow(xb, 4) / 5.0) * 2.0);
}

TEST_CASE("init values do not depend on thread count or dtype, and strided targets get the same stream",
          "[init]") {
  auto draw = [](int threads) {
    const vts_test_common::ThreadCount scope(threads);
    Generator g(2024);
    auto t = Tensor<double>::empty(Shape{3 * kN / 4});
    init::normal_(t, 0.0, 1.0, g);
    init::trunc_normal_(t.slice(0, 0, kN / 4), 0.0, 0.02, -0.04, 0.04, g);
    return t.to_vector();
  };
  const auto one = draw(1), two = draw(2);
  CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(double)) == 0);

  // float and double tensors get the same draws, rounded.
  Generator gd(3), gf(3);
  const auto d = init::uniform_(Tensor<double>::empty(Shape{1000}), -1.0, 1.0, gd).to_vector();
  const auto f = init::uniform_(Tensor<float>::empty(Shape{1000}), -1.0, 1.0, gf).to_vector();
  bool same = true;
  for (size_t i = 0; i < d.size(); ++i) same = same && (f[i] == static_cast<float>(d[i]));
  CHECK(same);

  // Initialising a transposed view writes value k to the view's k-th element in row-major order.
  Generator gs(8), gc(8);
  auto base = Tensor<double>::zeros(Shape{6, 5});
  init::normal_(base.transpose(0, 1), 0.0, 1.0, gs);
  const auto ref = init::normal_(Tensor<double>::empty(Shape{5, 6}), 0.0, 1.0, gc).to_vector();
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 6; ++j) CHECK(base.at({j, i}) == ref[size_t(i * 6 + j)]);
}

// The draws are made sixteen Philox blocks at a time (init.hpp, fill_from_blocks); each element
// must still be the value of its own block, computed here one element at a time from
// Philox::generate: sizes around whole batches of 32 elements, counters whose low word wraps, one
// to three threads.
TEST_CASE("init draws element i from Philox block first + i/2 of the reserved range", "[init]") {
  using vts::Philox;
  auto uniform_ref = [](int64_t n, double a, double b, uint64_t seed, uint64_t first) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const auto bits = Philox::generate(seed, 0, first + static_cast<uint64_t>(i / 2));
      v[size_t(i)] = static_cast<float>(a + (b - a) * init::detail::unit_double(bits, static_cast<int>(2 * (i % 2))));
    }
    return v;
  };
  auto normal_ref = [](int64_t n, double mean, double sd, uint64_t seed, uint64_t first) {
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const auto bits = Philox::generate(seed, 0, first + static_cast<uint64_t>(i / 2));
      const double r = std::sqrt(-2.0 * std::log(1.0 - init::detail::unit_double(bits, 0)));
      const double angle = 2.0 * std::numbers::pi * init::detail::unit_double(bits, 2);
      v[size_t(i)] = mean + sd * r * (i % 2 == 0 ? std::cos(angle) : std::sin(angle));
    }
    return v;
  };
  int mismatched = 0, cases = 0;
  for (int threads = 1; threads <= 3; ++threads) {
    const vts_test_common::ThreadCount scope(threads);
    for (int64_t n : {1, 2, 31, 32, 33, 64, 95, 1000, 40001}) {
      for (uint64_t offset : {uint64_t(0), uint64_t(12), (uint64_t(1) << 34) - 8}) {
        Generator gu(41, offset), gn(42, offset);
        const uint64_t uniform_first = gu.offset(), normal_first = gn.offset();
        const auto u = init::uniform_(Tensor<float>::empty(Shape{n}), -0.25, 0.75, gu).to_vector();
        const auto uref = uniform_ref(n, -0.25, 0.75, 41, uniform_first);
        const auto g = init::normal_(Tensor<double>::empty(Shape{n}), 0.5, 2.0, gn).to_vector();
        const auto gref = normal_ref(n, 0.5, 2.0, 42, normal_first);
        mismatched += std::memcmp(u.data(), uref.data(), u.size() * sizeof(float)) != 0;
        mismatched += std::memcmp(g.data(), gref.data(), g.size() * sizeof(double)) != 0;
        cases += 2;
      }
    }
  }
  INFO(mismatched << " of " << cases << " draws differ from the per-element reference");
  CHECK(mismatched == 0);
}

TEST_CASE("SkipRandomInit leaves the random initialisers' targets alone while it lives, on its thread", "[init]") {
  Generator g(5);
  auto t = Tensor<float>::full(Shape{100}, 7.0f);
  {
    init::SkipRandomInit skip;
    {
      init::SkipRandomInit nested;
    }
    CHECK(init::SkipRandomInit::active());  // the inner guard restored the outer one's state
    init::uniform_(t, -1.0, 1.0, g);
    init::normal_(t, 0.0, 1.0, g);
    init::trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, g);
    init::linear_(t.view(Shape{10, 10}), Tensor<float>(), g);
    CHECK(t.to_vector() == std::vector<float>(100, 7.0f));
    init::ones_(t);  // constant fills still write
    CHECK(t.to_vector() == std::vector<float>(100, 1.0f));
    bool other_thread_draws = false;
    std::thread([&] {
      auto u = Tensor<float>::full(Shape{100}, 7.0f);
      init::uniform_(u, -1.0, 1.0, g);
      other_thread_draws = u.to_vector() != std::vector<float>(100, 7.0f);
    }).join();
    CHECK(other_thread_draws);
  }
  CHECK_FALSE(init::SkipRandomInit::active());
  init::uniform_(t, -1.0, 1.0, g);
  CHECK(t.to_vector() != std::vector<float>(100, 1.0f));
}

TEST_CASE("zeros_, ones_, constant_ fill, and bad arguments throw", "[init]") {
  auto t = Tensor<float>::empty(Shape{3, 4});
  init::ones_(t);
  CHECK(t.to_vector() == std::vector<float>(12, 1.0f));
  init::constant_(t, -2.5);
  CHECK(t.to_vector() == std::vector<float>(12, -2.5f));
  init::zeros_(t);
  CHECK(t.to_vector() == std::vector<float>(12, 0.0f));
  Generator g(1);
  CHECK_THROWS(init::uniform_(t, 1.0, -1.0, g));
  CHECK_THROWS(init::normal_(t, 0.0, -1.0, g));
  CHECK_THROWS(init::trunc_normal_(t, 0.0, 1.0, 2.0, -2.0, g));
  CHECK_THROWS(init::trunc_normal_(t, 0.0, 1.0, 50.0, 60.0, g));  // no mass left in double
  CHECK_THROWS(init::linear_(Tensor<float>::empty(Shape{4}), Tensor<float>(), g));
  // A parameter that requires grad can be (re)initialised in place; it stays a leaf.
  auto p = Tensor<float>::empty(Shape{8, 8});
  p.requires_grad_();
  init::linear_(p, Tensor<float>(), g);
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());
}
