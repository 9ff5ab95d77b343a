// Gradient checks for elementwise ops and reductions, and the explicit gradients of the
// non-smooth ones. Every smooth op is checked on a contiguous input, a broadcast pair where it is
// binary, and at least one non-contiguous view (transposed, stepped slice or expanded) built
// inside f from a contiguous leaf, because strided kernels and sum_to are where such bugs hide.
#include <limits>

#include "test_util.hpp"

using namespace vts;
using namespace vts_test;

// ---- binary ops ---------------------------------------------------------------------------------

TEST_CASE("grad: add, sub, mul, div with tensor operands", "[grad][elementwise]") {
  SECTION("same shape") {
    check_grad([](auto& in) { return add(in[0], in[1]); }, {uniform({3, 4}, 1), uniform({3, 4}, 2)});
    check_grad([](auto& in) { return sub(in[0], in[1]); }, {uniform({3, 4}, 3), uniform({3, 4}, 4)});
    check_grad([](auto& in) { return mul(in[0], in[1]); }, {uniform({3, 4}, 5), uniform({3, 4}, 6)});
    check_grad([](auto& in) { return div(in[0], in[1]); }, {uniform({3, 4}, 7), signed_magnitude({3, 4}, 8)});
  }
  SECTION("broadcast: row, column, leading axes, scalar-shaped") {
    // [2,3,4] op [4], [3,1] op [1,4], [] op [2,3]
    check_grad([](auto& in) { return add(in[0], in[1]); }, {uniform({2, 3, 4}, 11), uniform({4}, 12)});
    check_grad([](auto& in) { return sub(in[0], in[1]); }, {uniform({3, 1}, 13), uniform({1, 4}, 14)});
    check_grad([](auto& in) { return mul(in[0], in[1]); }, {uniform({}, 15), uniform({2, 3}, 16)});
    check_grad([](auto& in) { return mul(in[0], in[1]); }, {uniform({2, 1, 4}, 17), uniform({3, 1}, 18)});
    check_grad([](auto& in) { return div(in[0], in[1]); }, {uniform({2, 3, 4}, 19), signed_magnitude({3, 1}, 20)});
    check_grad([](auto& in) { return div(in[0], in[1]); }, {uniform({4}, 21), signed_magnitude({3, 4}, 22)});
  }
  SECTION("non-contiguous operands") {
    // transposed [4,3] -> [3,4]; stepped slice of [6,4] -> [3,4]; expanded [1,4] -> [3,4]
    check_grad([](auto& in) { return mul(in[0].t(), in[1].slice(0, 0, 6, 2)); },
               {uniform({4, 3}, 23), uniform({6, 4}, 24)});
    check_grad([](auto& in) { return div(in[0].expand({3, 4}), in[1].t()); },
               {uniform({1, 4}, 25), signed_magnitude({4, 3}, 26)});
    check_grad([](auto& in) { return sub(in[0].permute({2, 0, 1}), in[1]); },
               {uniform({3, 4, 2}, 27), uniform({2, 1, 4}, 28)});
  }
  SECTION("operators") {
    check_grad([](auto& in) { return in[0] + in[1] * in[0] - in[1] / in[2]; },
               {uniform({2, 3}, 31), uniform({3}, 32), signed_magnitude({2, 1}, 33)});
    check_grad([](auto& in) { return -in[0]; }, {uniform({2, 3}, 34)});
  }
}

// mul and div keep only the operand the other one's gradient needs (mul saves a only when b needs
// a gradient, div reads y only for b's): each side checked with the other a captured constant,
// broadcast against it, so a wrongly skipped or swapped saved operand shows.
TEST_CASE("grad: mul and div with one constant operand", "[grad][elementwise]") {
  const Td row = uniform({4}, 35), wide = uniform({3, 4}, 36), nonzero = signed_magnitude({3, 4}, 37);
  check_grad([&](auto& in) { return mul(in[0], row); }, {uniform({3, 4}, 38)});
  check_grad([&](auto& in) { return mul(wide, in[0]); }, {uniform({3, 1}, 39)});
  check_grad([&](auto& in) { return div(in[0], nonzero); }, {uniform({2, 3, 4}, 40)});
  check_grad([&](auto& in) { return div(wide, in[0]); }, {signed_magnitude({4}, 44)});
  check_grad([&](auto& in) { return div(row, in[0].t()); }, {signed_magnitude({4, 3}, 45)});
}

TEST_CASE("grad: scalar operands and operators", "[grad][elementwise]") {
  const Td x = uniform({3, 4}, 41);
  check_grad([](auto& in) { return add(in[0], 2.5); }, {x});
  check_grad([](auto& in) { return mul(in[0], -1.75); }, {x});
  check_grad([](auto& in) { return rsub(in[0], 3.0); }, {x});
  check_grad([](auto& in) { return rdiv(in[0], 2.0); }, {signed_magnitude({3, 4}, 42)});
  check_grad([](auto& in) { return 2.0 + in[0].t() * 3.0 - 1.5; }, {x});
  check_grad([](auto& in) { return 0.5 - in[0] / 4.0; }, {x});
  check_grad([](auto& in) { return 2.0 * in[0] + 3.0 / in[0].t(); }, {signed_magnitude({3, 3}, 43)});
}

TEST_CASE("grad: maximum away from ties", "[grad][elementwise]") {
  check_grad([](auto& in) { return maximum(in[0], in[1]); }, {uniform({3, 4}, 51), uniform({3, 4}, 52)});
  check_grad([](auto& in) { return maximum(in[0], in[1]); }, {uniform({2, 3, 4}, 53), uniform({4}, 54)});
  check_grad([](auto& in) { return maximum(in[0].t(), in[1].expand({3, 4})); },
             {uniform({4, 3}, 55), uniform({3, 1}, 56)});
}

// ---- unary ops ------------------------------------------------------------------------------------

// Each unary op: a contiguous [3,4] input, a transposed view and a stepped slice.
static void check_unary(const std::function<Td(const Td&)>& op, const std::function<Td(uint64_t, Shape)>& make) {
  check_grad([&](auto& in) { return op(in[0]); }, {make(1, Shape{3, 4})});
  check_grad([&](auto& in) { return op(in[0].t()); }, {make(2, Shape{4, 3})});
  check_grad([&](auto& in) { return op(in[0].slice(1, 1, 7, 2)); }, {make(3, Shape{2, 3, 7})});
}

TEST_CASE("grad: smooth unary ops", "[grad][elementwise]") {
  auto any = [](uint64_t s, Shape sh) { return uniform(sh, 100 + s, -2.0, 2.0); };
  auto pos = [](uint64_t s, Shape sh) { return uniform(sh, 200 + s, 0.3, 3.0); };
  auto nonzero = [](uint64_t s, Shape sh) { return signed_magnitude(sh, 300 + s, 0.2, 2.0); };
  SECTION("neg") { check_unary([](const Td& x) { return neg(x); }, any); }
  SECTION("exp") { check_unary([](const Td& x) { return vts::exp(x); }, any); }
  SECTION("log") { check_unary([](const Td& x) { return vts::log(x); }, pos); }
  SECTION("sqrt") { check_unary([](const Td& x) { return vts::sqrt(x); }, pos); }
  SECTION("tanh") { check_unary([](const Td& x) { return vts::tanh(x); }, any); }
  SECTION("sigmoid") { check_unary([](const Td& x) { return sigmoid(x); }, any); }
  SECTION("softplus") {
    check_unary([](const Td& x) { return softplus(x); }, any);
    // Both branches of the overflow-safe formula, far from zero.
    check_grad([](auto& in) { return softplus(in[0]); }, {Td::from_vector({-30, -12, 12, 30, 50})});
  }
  SECTION("gelu") { check_unary([](const Td& x) { return gelu(x); }, any); }
  SECTION("softsign") { check_unary([](const Td& x) { return softsign(x); }, nonzero); }
  SECTION("abs") { check_unary([](const Td& x) { return vts::abs(x); }, nonzero); }
  SECTION("relu") { check_unary([](const Td& x) { return relu(x); }, nonzero); }
  SECTION("clamp") {
    auto off_edges = [](uint64_t s, Shape sh) { return away_from(sh, 400 + s, {-0.5, 0.75}); };
    check_unary([](const Td& x) { return clamp(x, -0.5, 0.75); }, off_edges);
  }
  SECTION("clamp_min") {
    auto off_edge = [](uint64_t s, Shape sh) { return away_from(sh, 500 + s, {0.25}); };
    check_unary([](const Td& x) { return clamp_min(x, 0.25); }, off_edge);
  }
}

TEST_CASE("grad: pow with a scalar exponent", "[grad][elementwise]") {
  // Exponent 2 takes the x*x fast path; 3 runs on negative bases too; 0.5 and -1.5 need x > 0.
  check_unary([](const Td& x) { return vts::pow(x, 2.0); }, [](uint64_t s, Shape sh) { return uniform(sh, 600 + s, -2, 2); });
  check_unary([](const Td& x) { return vts::pow(x, 3.0); }, [](uint64_t s, Shape sh) { return uniform(sh, 610 + s, -2, 2); });
  check_unary([](const Td& x) { return vts::pow(x, 0.5); }, [](uint64_t s, Shape sh) { return uniform(sh, 620 + s, 0.3, 3); });
  check_unary([](const Td& x) { return vts::pow(x, -1.5); }, [](uint64_t s, Shape sh) { return uniform(sh, 630 + s, 0.5, 3); });
}

// ---- reductions -------------------------------------------------------------------------------------

TEST_CASE("grad: sum and mean over axes and over all", "[grad][reduce]") {
  const Td x = uniform({2, 3, 4, 5}, 701);
  for (bool keep : {false, true}) {
    INFO("keepdim " << keep);
    check_grad([keep](auto& in) { return sum(in[0], {1}, keep); }, {x});
    check_grad([keep](auto& in) { return sum(in[0], {-1}, keep); }, {x});
    check_grad([keep](auto& in) { return sum(in[0], {0, 2}, keep); }, {x});     // non-adjacent
    check_grad([keep](auto& in) { return sum(in[0], {3, 1, 0}, keep); }, {x});  // unsorted, mixed
    check_grad([keep](auto& in) { return mean(in[0], {1, 3}, keep); }, {x});
    check_grad([keep](auto& in) { return mean(in[0], {2, 3}, keep); }, {x});   // adjacent run
  }
  check_grad([](auto& in) { return sum(in[0]); }, {x});
  check_grad([](auto& in) { return mean(in[0]); }, {x});
  // An empty axis list reduces nothing (NumPy's axis=(), not PyTorch's dim=[]): x itself.
  CHECK(sum(x, {}).to_vector() == x.to_vector());
  CHECK(mean(x, {}, true).shape() == x.shape());
  check_grad([](auto& in) { return mean(in[0], {}); }, {uniform({2, 3}, 707)});
  // Reductions of views: transposed, stepped slice, expanded (the expand makes the sum count each
  // leaf element several times).
  check_grad([](auto& in) { return sum(in[0].t(), {0}); }, {uniform({4, 3}, 702)});
  check_grad([](auto& in) { return mean(in[0].slice(0, 1, 6, 2), {1}, true); }, {uniform({6, 5}, 703)});
  check_grad([](auto& in) { return sum(in[0].expand({4, 3, 5}), {0, 2}); }, {uniform({3, 1}, 704)});
  check_grad([](auto& in) { return mean(in[0].permute({2, 0, 1})); }, {uniform({2, 3, 4}, 705)});
  // Products of reductions make the gradient depend on the values, not only on the shapes.
  check_grad([](auto& in) { return mul(sum(in[0], {0}), mean(in[0], {0})); }, {uniform({3, 4}, 706)});
}

TEST_CASE("grad: max over an axis and over all", "[grad][reduce]") {
  // Uniform doubles are distinct, so the arg-max is unique and the function is smooth around x.
  const Td x = uniform({3, 4, 5}, 801);
  for (int axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    check_grad([axis](auto& in) { return vts::max(in[0], axis); }, {x});
    check_grad([axis](auto& in) { return vts::max(in[0], axis, true); }, {x});
  }
  check_grad([](auto& in) { return vts::max(in[0]); }, {x});
  check_grad([](auto& in) { return vts::max(in[0].t(), 0); }, {uniform({4, 6}, 802)});
  check_grad([](auto& in) { return vts::max(in[0].slice(1, 0, 6, 3)); }, {uniform({4, 6}, 803)});
}

// ---- explicit gradients at non-smooth points ----------------------------------------------------------

TEST_CASE("non-smooth: sign has zero gradient, sign_ste passes it through", "[grad][nonsmooth]") {
  Td x = Td::from_vector({-1.5, 0.0, 2.0, -0.0, 1e-300});
  const Td w = Td::from_vector({1.0, 2.0, 3.0, 4.0, 5.0});
  x.requires_grad_();
  const Td s = sign(x);
  check_values(s.to_vector(), {-1, 0, 1, 0, 1});
  check_values(grad_of(x, s, w), {0, 0, 0, 0, 0});
  check_values(grad_of(x, sign_ste(x), w), {1, 2, 3, 4, 5});
  check_values(sign_ste(x).to_vector(), {-1, 0, 1, 0, 1});
}

TEST_CASE("non-smooth: abs, relu, clamp, clamp_min at their kinks", "[grad][nonsmooth]") {
  const Td w = Td::from_vector({1.0, 2.0, 3.0, 4.0, 5.0});
  SECTION("abs'(0) = 0") {
    Td x = Td::from_vector({-2.0, -0.0, 0.0, 0.5, 3.0});
    x.requires_grad_();
    check_values(grad_of(x, vts::abs(x), w), {-1, 0, 0, 4, 5});
  }
  SECTION("relu'(0) = 0") {
    Td x = Td::from_vector({-1.0, 0.0, 1e-12, 2.0, -0.0});
    x.requires_grad_();
    check_values(grad_of(x, relu(x), w), {0, 0, 3, 4, 0});
  }
  SECTION("clamp passes the gradient on the closed interval [lo, hi]") {
    Td x = Td::from_vector({-1.5, -1.0, 0.0, 1.0, 1.5});
    x.requires_grad_();
    const Td y = clamp(x, -1.0, 1.0);
    check_values(y.to_vector(), {-1, -1, 0, 1, 1});
    check_values(grad_of(x, y, w), {0, 2, 3, 4, 0});
  }
  SECTION("clamp_min passes the gradient at and above the threshold") {
    Td x = Td::from_vector({0.2, 0.5, 0.9, -3.0, 0.5000001});
    x.requires_grad_();
    const Td y = clamp_min(x, 0.5);
    check_values(y.to_vector(), {0.5, 0.5, 0.9, 0.5, 0.5000001});
    check_values(grad_of(x, y, w), {0, 2, 3, 0, 5});
  }
}

// A NaN that a ReLU turned into 0 hides a diverged layer: the loss stays finite and training goes
// on with garbage. PyTorch's relu, clamp_min and maximum return the NaN; so do these.
TEST_CASE("relu, clamp_min and maximum propagate NaN", "[nonsmooth]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Td x = Td::from_vector({nan, -1.0, 2.0});
  const auto r = relu(x).to_vector(), c = clamp_min(x, 0.5).to_vector();
  CHECK(std::isnan(r[0]));
  check_values({r[1], r[2]}, {0, 2});
  CHECK(std::isnan(c[0]));
  check_values({c[1], c[2]}, {0.5, 2});
  const auto m = maximum(x, Td::from_vector({0.0, nan, 1.0})).to_vector();
  CHECK(std::isnan(m[0]));
  CHECK(std::isnan(m[1]));
  CHECK(m[2] == 2.0);
  // float: the same functors in the vectorised float loops.
  const auto rf = relu(Tf::from_vector({std::numeric_limits<float>::quiet_NaN(), -1.0f})).to_vector();
  CHECK(std::isnan(rf[0]));
  CHECK(rf[1] == 0.0f);
}

TEST_CASE("non-smooth: pow at zero", "[grad][nonsmooth]") {
  // x^0 is the constant 1, so its gradient is 0 even at x = 0 (PyTorch agrees); x^2 and x^3 have a
  // zero derivative there; x^0.5 an infinite one.
  Td x = Td::from_vector({0.0, 2.0});
  x.requires_grad_();
  const Td w = Td::from_vector({1.0, 1.0});
  const Td p0 = vts::pow(x, 0.0);
  check_values(p0.to_vector(), {1, 1});
  check_values(grad_of(x, p0, w), {0, 0});
  check_values(grad_of(x, vts::pow(x, 2.0), w), {0, 4});
  check_values(grad_of(x, vts::pow(x, 3.0), w), {0, 12});
  const auto half = grad_of(x, vts::pow(x, 0.5), w);
  CHECK(std::isinf(half[0]));
  CHECK(half[1] == Approx(0.5 / std::sqrt(2.0)));
}

TEST_CASE("non-smooth: maximum splits the gradient at ties", "[grad][nonsmooth]") {
  Td a = Td::from_vector({1.0, 2.0, 3.0, -1.0});
  Td b = Td::from_vector({1.0, 5.0, 0.0, -1.0});
  const Td w = Td::from_vector({2.0, 4.0, 6.0, 8.0});
  a.requires_grad_();
  b.requires_grad_();
  sum(mul(maximum(a, b), w)).backward();
  check_values(a.grad().to_vector(), {1, 0, 6, 4});
  check_values(b.grad().to_vector(), {1, 4, 0, 4});

  // Broadcast: one element of b is compared with a whole row of a; its gradient is the sum of
  // its shares.
  Td r = Td::from_vector({1.0, 0.0, 2.0, 1.0}, {2, 2});
  Td s = Td::from_vector({1.0});
  r.requires_grad_();
  s.requires_grad_();
  sum(maximum(r, s)).backward();
  check_values(r.grad().to_vector(), {0.5, 0, 1, 0.5});
  check_values(s.grad().to_vector(), {0.5 + 1 + 0.5});
}

TEST_CASE("non-smooth: max routes the gradient to the first maximal element", "[grad][nonsmooth]") {
  SECTION("over all") {
    Td x = Td::from_vector({3.0, 1.0, 3.0, 2.0, 3.0, 0.0}, {2, 3});
    x.requires_grad_();
    const Td m = vts::max(x);
    CHECK(m.item() == 3.0);
    m.backward();
    check_values(x.grad().to_vector(), {1, 0, 0, 0, 0, 0});
  }
  SECTION("over each axis") {
    // [[1, 5, 5],
    //  [2, 2, 0]]
    Td x = Td::from_vector({1.0, 5.0, 5.0, 2.0, 2.0, 0.0}, {2, 3});
    x.requires_grad_();
    const Td w2 = Td::from_vector({10.0, 20.0});
    check_values(grad_of(x, vts::max(x, 1), w2), {0, 10, 0, 20, 0, 0});
    // Along axis 0 every column's maximum is in row 0; column 0 gets it by a tie.
    Td y = Td::from_vector({2.0, 5.0, 5.0, 2.0, 2.0, 0.0}, {2, 3});
    y.requires_grad_();
    const Td w3 = Td::from_vector({1.0, 2.0, 3.0});
    check_values(grad_of(y, vts::max(y, 0), w3), {1, 2, 3, 0, 0, 0});
  }
}

// ---- threaded paths ------------------------------------------------------------------------------------
// Gradient checks use small tensors, which the CPU loops run inline. These inputs are large enough
// that the loops split work across threads (when more than one is available): a long single row,
// a tall column block, and a strided elementwise loop whose chunks start mid-tensor.

TEST_CASE("large reductions and strided loops agree with a serial reference", "[reduce][threads]") {
  SECTION("sum of one long row and of a tall [R, 3] block") {
    const Td row = uniform({1, 100003}, 901);
    const auto v = row.to_vector();
    double want = 0;
    for (double x : v) want += x;
    CHECK(sum(row, {1}).item() == Approx(want).epsilon(1e-12));
    CHECK(sum(row).item() == Approx(want).epsilon(1e-12));

    const Td tall = uniform({40001, 3}, 902);
    const auto t = tall.to_vector();
    std::vector<double> cols(3, 0.0);
    for (size_t i = 0; i < t.size(); ++i) cols[i % 3] += t[i];
    check_values(sum(tall, {0}).to_vector(), cols, 1e-11);
  }
  SECTION("a transposed, broadcast elementwise op over 77k elements") {
    const Td a = uniform({257, 300}, 903), b = uniform({257}, 904);
    const Td y = add(a.t(), b);  // [300, 257]: a read with strides (1, 300), b broadcast along rows
    const auto av = a.to_vector(), bv = b.to_vector(), yv = y.to_vector();
    for (size_t i = 0; i < 300; i += 7)
      for (size_t j = 0; j < 257; j += 3) {
        INFO("element " << i << ", " << j);
        CHECK(yv[i * 257 + j] == av[j * 300 + i] + bv[j]);
      }
    // And its gradient: b's is a column sum of the seed over 300 rows.
    Td bb = b.clone_nograd();
    bb.requires_grad_();
    sum(add(a.t(), bb)).backward();
    check_values(bb.grad().to_vector(), std::vector<double>(257, 300.0));
  }
}
