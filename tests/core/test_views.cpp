// Views: their gradients, their aliasing semantics (a view shares storage, a copy does not), and a
// few float instantiations compared with the same computation in double.
#include "test_util.hpp"

using namespace vts;
using namespace vts_test;

// ---- gradients through views ------------------------------------------------------------------------
// A view's gradient is a pure re-indexing; multiplying by a fixed non-uniform tensor after the view
// makes a wrong index show up as a wrong value rather than a permutation of equal ones.

TEST_CASE("grad: reshape and flatten", "[grad][view]") {
  check_grad([](auto& in) { return in[0].reshape({4, -1}); }, {uniform({2, 3, 2}, 1)});
  check_grad([](auto& in) { return in[0].flatten(); }, {uniform({2, 3, 2}, 2)});
  check_grad([](auto& in) { return in[0].flatten(1, 2); }, {uniform({2, 3, 2, 2}, 3)});
  // Reshape of a transposed view copies; its gradient must still land on the right elements.
  check_grad([](auto& in) { return mul(in[0].t().reshape({6}), Td::from_vector({1, 2, 3, 4, 5, 6})); },
             {uniform({2, 3}, 4)});
  check_grad([](auto& in) { return in[0].slice(1, 0, 4, 3).reshape({-1}); }, {uniform({3, 4}, 5)});
}

TEST_CASE("grad: permute and transpose", "[grad][view]") {
  check_grad([](auto& in) { return in[0].permute({2, 0, 1}); }, {uniform({2, 3, 4}, 11)});
  check_grad([](auto& in) { return in[0].permute({-1, 1, 0}).permute({1, 2, 0}); }, {uniform({2, 3, 4}, 12)});
  check_grad([](auto& in) { return in[0].transpose(0, 2); }, {uniform({2, 3, 4}, 13)});
  check_grad([](auto& in) { return mul(in[0].t(), in[0]); }, {uniform({3, 3}, 14)});
}

TEST_CASE("grad: slice and select", "[grad][view]") {
  check_grad([](auto& in) { return in[0].slice(0, 1, 4); }, {uniform({5, 2}, 21)});
  check_grad([](auto& in) { return in[0].slice(1, 1, 7, 3); }, {uniform({2, 8}, 22)});  // step 3
  check_grad([](auto& in) { return in[0].slice(-1, -4, -1, 2); }, {uniform({2, 6}, 23)});  // negative bounds
  check_grad([](auto& in) { return in[0].slice(0, 0, 4, 2).slice(1, 1, 5, 2); }, {uniform({4, 5}, 24)});
  check_grad([](auto& in) { return in[0].select(1, 2); }, {uniform({3, 4, 2}, 25)});
  check_grad([](auto& in) { return in[0].select(0, -1); }, {uniform({3, 4}, 26)});
  check_grad([](auto& in) { return in[0].t().select(0, 1); }, {uniform({3, 4}, 27)});
  // Overlapping slices: their gradients add up on the shared elements.
  check_grad([](auto& in) { return add(in[0].slice(0, 0, 3), mul(in[0].slice(0, 1, 4), 2.0)); },
             {uniform({4, 2}, 28)});
}

TEST_CASE("grad: expand, unsqueeze, squeeze, contiguous", "[grad][view]") {
  check_grad([](auto& in) { return in[0].expand({3, 4}); }, {uniform({1, 4}, 31)});
  check_grad([](auto& in) { return in[0].expand({2, 3, 4}); }, {uniform({3, 1}, 32)});
  check_grad([](auto& in) { return in[0].expand({2, -1, 3}); }, {uniform({2, 1}, 33)});
  check_grad([](auto& in) { return in[0].unsqueeze(0); }, {uniform({3, 2}, 34)});
  check_grad([](auto& in) { return in[0].unsqueeze(-1).expand({3, 2, 4}); }, {uniform({3, 2}, 35)});
  check_grad([](auto& in) { return in[0].t().unsqueeze(1); }, {uniform({3, 2}, 36)});
  check_grad([](auto& in) { return in[0].squeeze(1); }, {uniform({3, 1, 2}, 37)});
  check_grad([](auto& in) { return in[0].squeeze(-1).t(); }, {uniform({3, 2, 1}, 38)});
  check_grad([](auto& in) { return in[0].t().contiguous(); }, {uniform({3, 4}, 39)});
  check_grad([](auto& in) { return in[0].slice(1, 0, 4, 2).contiguous().reshape({6}); }, {uniform({3, 4}, 40)});
}

// ---- view semantics ------------------------------------------------------------------------------------

TEST_CASE("views share storage with their base", "[view]") {
  Td base = Td::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  SECTION("writing through a stepped slice changes the base") {
    Td s = base.slice(1, 1, 4, 2);  // columns 1 and 3
    REQUIRE(s.shape() == Shape{3, 2});
    CHECK(s.same_storage(base));
    s.fill_(-1);
    check_values(base.to_vector(), {0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1});
  }
  SECTION("select, transpose and reshape of a contiguous tensor alias the base") {
    Td row = base.select(0, 2);
    check_values(row.to_vector(), {8, 9, 10, 11});
    row.copy_(Td::from_vector({-8, -9, -10, -11}));
    CHECK(base.at({2, 1}) == -9);
    Td tr = base.t();
    CHECK(tr.same_storage(base));
    CHECK(tr.at({1, 2}) == -9);
    Td flat = base.reshape({12});
    CHECK(flat.same_storage(base));
    flat.fill_(7);
    CHECK(base.at({0, 0}) == 7);
  }
  SECTION("slice offsets and strides") {
    Td s = base.slice(0, 1, 3).slice(1, 2, 4);
    CHECK(s.offset() == 6);
    CHECK(s.strides() == Strides{4, 1});
    check_values(s.to_vector(), {6, 7, 10, 11});
    CHECK_FALSE(s.is_contiguous());
    Td stepped = base.slice(1, 0, 4, 3);
    CHECK(stepped.strides() == Strides{4, 3});
    check_values(stepped.to_vector(), {0, 3, 4, 7, 8, 11});
  }
}

TEST_CASE("contiguous() and reshape copy only when they must", "[view]") {
  Td x = uniform({3, 4}, 51);
  SECTION("contiguous of a contiguous tensor is the same tensor") {
    Td c = x.contiguous();
    CHECK(c.same_storage(x));
    CHECK(c.impl() == x.impl());
    // A slice of whole rows is contiguous too, at an offset.
    Td rows = x.slice(0, 1, 3);
    CHECK(rows.is_contiguous());
    CHECK(rows.contiguous().same_storage(x));
  }
  SECTION("contiguous of a transposed tensor copies, with the same values") {
    Td tr = x.t();
    CHECK_FALSE(tr.is_contiguous());
    Td c = tr.contiguous();
    CHECK_FALSE(c.same_storage(x));
    CHECK(c.is_contiguous());
    CHECK(c.strides() == Strides{3, 1});
    check_values(c.to_vector(), tr.to_vector());
    CHECK(c.at({3, 1}) == x.at({1, 3}));
  }
  SECTION("reshape of a transposed tensor copies; of a contiguous one it does not") {
    Td r = x.t().reshape({12});
    CHECK_FALSE(r.same_storage(x));
    CHECK(r.at({1}) == x.at({1, 0}));  // row-major order of the transposed view
    CHECK(x.reshape({2, 6}).same_storage(x));
    CHECK(x.reshape({2, 6}).at({1, 0}) == x.at({1, 2}));
  }
}

TEST_CASE("expand has stride 0 and no copy", "[view]") {
  Td row = Td::from_vector({1, 2, 3}, {1, 3});
  Td e = row.expand({4, 3});
  CHECK(e.same_storage(row));
  CHECK(e.strides() == Strides{0, 1});
  CHECK_FALSE(e.is_contiguous());
  check_values(e.to_vector(), {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  Td col = Td::from_vector({5, 6}, {2, 1});
  Td e2 = col.expand({3, 2, 4});
  CHECK(e2.strides() == Strides{0, 1, 0});
  CHECK(e2.at({2, 1, 3}) == 6);
  row.fill_(9);
  CHECK(e.at({3, 2}) == 9);
  // -1 keeps an existing size but cannot invent a new leading one.
  CHECK(col.expand({-1, 3}).shape() == Shape{2, 3});
  CHECK_THROWS_AS(col.expand({-1, 2, 3}), ShapeError);
  CHECK_THROWS_AS(col.expand({3, 3}), ShapeError);
}

// Both used to succeed silently: flatten(2, 1) gave [2, 3, 1, 4], and copy_ into an expanded
// view kept the last of the values written to each shared element.
TEST_CASE("flatten with reversed axes and copy_ into a broadcast view are refused", "[view][errors]") {
  CHECK_THROWS_AS(Td::zeros({2, 3, 4}).flatten(2, 1), ShapeError);
  CHECK(Td::zeros({2, 3, 4}).flatten(1, 1).shape() == Shape{2, 3, 4});
  Td base = Td::zeros({1, 3});
  Td wide = base.expand({2, 3});
  CHECK_THROWS_AS(wide.copy_(Td::from_vector({1, 2, 3, 4, 5, 6}, {2, 3})), ShapeError);
  check_values(base.to_vector(), {0, 0, 0});
  CHECK_NOTHROW(base.copy_(Td::from_vector({1, 2, 3}, {1, 3})));  // a size-1 axis is not broadcast
  CHECK_NOTHROW(wide.fill_(7.0));  // one value for every position is well defined
  check_values(base.to_vector(), {7, 7, 7});
}

TEST_CASE("unsqueeze and squeeze keep the data in place", "[view]") {
  Td x = uniform({3, 2}, 61);
  Td u = x.unsqueeze(1);
  CHECK(u.shape() == Shape{3, 1, 2});
  CHECK(u.same_storage(x));
  CHECK(u.is_contiguous());
  CHECK(x.unsqueeze(-1).shape() == Shape{3, 2, 1});
  CHECK(u.squeeze(1).shape() == Shape{3, 2});
  CHECK_THROWS_AS(x.squeeze(0), ShapeError);
}

// ---- float instantiations ---------------------------------------------------------------------------------
// Gradcheck runs in double; these make sure the float instantiations compile and agree with double
// on the same inputs, forward and backward.

template <class T, class F>
std::pair<std::vector<double>, std::vector<double>> run_in(const Td& x64, const Td& w64, F op) {
  using Tt = Tensor<T>;
  Tt x;
  Tt w;
  if constexpr (std::is_same_v<T, float>) {
    x = to_float(x64);
    w = to_float(w64);
  } else {
    x = x64.clone_nograd();
    w = w64;
  }
  x.requires_grad_();
  Tt y = op(x);
  sum(mul(y, w)).backward();
  auto yv = y.to_vector();
  auto gv = x.grad().to_vector();
  return {std::vector<double>(yv.begin(), yv.end()), std::vector<double>(gv.begin(), gv.end())};
}

template <class F>
void compare_float_with_double(const Td& x, const Td& w, F op, double tol = 2e-5) {
  const auto [y64, g64] = run_in<double>(x, w, op);
  const auto [y32, g32] = run_in<float>(x, w, op);
  REQUIRE(y32.size() == y64.size());
  REQUIRE(g32.size() == g64.size());
  for (size_t i = 0; i < y64.size(); ++i) CHECK(y32[i] == Approx(y64[i]).margin(tol).epsilon(tol));
  for (size_t i = 0; i < g64.size(); ++i) CHECK(g32[i] == Approx(g64[i]).margin(tol).epsilon(tol));
}

TEST_CASE("float ops agree with double", "[float]") {
  SECTION("gelu of a transposed view") {
    compare_float_with_double(uniform({4, 3}, 71, -3, 3), uniform({3, 4}, 72),
                              [](auto x) { return gelu(x.t()); });
  }
  SECTION("softmax over a non-last axis") {
    compare_float_with_double(uniform({3, 5}, 73, -3, 3), uniform({3, 5}, 74),
                              [](auto x) { return softmax(x, 0); });
  }
  SECTION("matmul with itself transposed") {
    compare_float_with_double(uniform({4, 3}, 75), uniform({4, 4}, 76), [](auto x) { return matmul(x, x.t()); });
  }
  SECTION("linear and layer_norm") {
    compare_float_with_double(uniform({2, 3, 4}, 77), uniform({2, 3, 4}, 78), [](auto x) {
      using Tt = decltype(x);
      using T = typename Tt::value_type;
      const Tt w = Tt::from_vector({0.5, -1, 0.25, 2, 1, 1, -0.5, 0.75, 0.1, 0.2, 0.3, 0.4, 1, 0, 0, 1}, {4, 4});
      const Tt g = Tt::from_vector({1, 2, 0.5, 1}), b = Tt::from_vector({0, 0.1, -0.1, 0.5});
      return layer_norm(linear(x, w, b), g, b, T(1e-5));
    });
  }
  SECTION("attention") {
    compare_float_with_double(uniform({1, 2, 9, 4}, 79), uniform({1, 2, 9, 4}, 80),
                              [](auto x) {
                                using T = typename decltype(x)::value_type;
                                return attention(x, mul(x, T(0.5)), x);
                              });
  }
  SECTION("reductions and sum_to through broadcasting") {
    compare_float_with_double(uniform({3, 4}, 81), uniform({3, 1}, 82), [](auto x) {
      return add(mean(x, {1}, true), vts::max(x, 1, true));
    });
  }
}
