// Forward values (and a few gradients) against PyTorch 1.13 where the semantics are easy to get
// subtly wrong: the erf form of GELU, softplus far from zero, BCE's log clamp, cross-entropy's
// mean, LayerNorm's eps inside the square root, softmax on logits that overflow exp().
// The numbers come from tests/golden/make_core_golden.py (float64 unless marked float32); each
// block quotes the expression that produced it. Nothing here runs Python.
#include "test_util.hpp"

using namespace vts;
using namespace vts_test;

TEST_CASE("golden: gelu is the exact erf form", "[golden]") {
  Td x = Td::from_vector({-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0});
  x.requires_grad_();
  const Td y = gelu(x);
  // F.gelu(x) for x = [-3, -1, -0.5, 0, 0.5, 1, 3]. The tanh approximation differs by up to 4e-4
  // (F.gelu(x, approximate="tanh")[0] = -0.0036373920817729943), far outside the tolerance.
  check_values(y.to_vector(), {-0.0040496940948903104, -0.15865525393145702, -0.15426876936299344, 0,
                               0.34573123063700656, 0.84134474606854304, 2.9959503059051098});
  sum(y).backward();
  // x.grad after F.gelu(x).sum().backward()
  check_values(x.grad().to_vector(), {-0.01194564720418392, -0.083315470587686347, 0.13250487534383712, 0.5,
                                      0.86749512465616285, 1.0833154705876864, 1.0119456472041839});
}

TEST_CASE("golden: softplus does not overflow or lose small values", "[golden]") {
  Td x = Td::from_vector({-100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 30.0, 100.0});
  x.requires_grad_();
  const Td y = softplus(x);
  // F.softplus(x). PyTorch returns x itself above its threshold of 20; our formula returns
  // x + log1p(exp(-x)), which differs from x by under 1e-13 at 30 and is the more exact value.
  check_values(y.to_vector(), {3.7200759760208361e-44, 2.0611536203143808e-09, 0.31326168751822286,
                               0.69314718055994529, 1.3132616875182228, 20.000000002061153, 30, 100});
  CHECK(y.to_vector()[0] > 0);  // tiny but not flushed to zero in double
  sum(y).backward();
  // x.grad after F.softplus(x).sum().backward()
  check_values(x.grad().to_vector(), {3.7200759760208361e-44, 2.0611536181902033e-09, 0.2689414213699951, 0.5,
                                      0.7310585786300049, 0.99999999793884642, 1, 1});
  // float32: F.softplus(x.float())
  const auto yf = softplus(to_float(x.detach())).to_vector();
  const std::vector<double> want_f{3.7835058536770061e-44, 2.0611536921677498e-09, 0.31326168775558472,
                                   0.69314718246459961, 1.3132616281509399, 20, 30, 100};
  for (size_t i = 0; i < yf.size(); ++i) CHECK(yf[i] == Approx(want_f[i]).epsilon(1e-6).margin(1e-12));
}

TEST_CASE("golden: binary_cross_entropy clamps each log at -100", "[golden]") {
  // p = [0, 1, 0, 1, 0.5, 0.25], t = [0, 1, 1, 0, 0.5, 1]: a confident wrong answer costs 100.
  Td p = Td::from_vector({0.0, 1.0, 0.0, 1.0, 0.5, 0.25});
  const Td t = Td::from_vector({0.0, 1.0, 1.0, 0.0, 0.5, 1.0});
  p.requires_grad_();
  const Td loss = binary_cross_entropy(p, t);
  // F.binary_cross_entropy(p, t)
  CHECK(loss.item() == Approx(33.679906923613309).epsilon(1e-14));
  loss.backward();
  // p.grad: (p − t) / max(p(1 − p), 1e-12) / 6, so exactly 0 and 1 give ±1e12/6 instead of ±inf.
  // PyTorch's epsilon is a float constant (1e-12f = 9.9999999600e-13), hence its ±1.666666673e11;
  // ours is the double 1e-12. The 4e-9 relative difference is far below anything that matters.
  check_values(p.grad().to_vector(), {0, 0, -166666667332.63382, 166666667332.63382, 0, -0.66666666666666663}, 1e-8);
  CHECK(p.grad().at({2}) == Approx(-1.0 / 6.0 / 1e-12).epsilon(1e-14));
}

TEST_CASE("golden: cross_entropy is the batch mean of -log softmax at the target", "[golden]") {
  Td logits = Td::from_vector({1.0, 2.0, 0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 3.0, -2.0, 1.0, 0.5}, {3, 4});
  logits.requires_grad_();
  const Td loss = cross_entropy(logits, {3, 0, 1});
  // F.cross_entropy(logits, torch.tensor([3, 0, 1]))
  CHECK(loss.item() == Approx(3.3612432356283661).epsilon(1e-14));
  loss.backward();
  // logits.grad
  check_values(logits.grad().to_vector(),
               {0.074735939349400371, 0.20315334586629236, 0.045329638597835176, -0.3232189238135279, -0.25,
                0.083333333333333329, 0.083333333333333329, 0.083333333333333329, 0.27229595445668858,
                -0.33149861762413874, 0.036851250120579743, 0.022351413046870494});
}

TEST_CASE("golden: layer_norm adds eps to the biased variance", "[golden]") {
  // x = [[1, 1.001, 0.999, 1.002], [0, 1, 2, 3]], w = [1, 2, 0.5, -1], b = [0, 0.1, -0.2, 0.3].
  // Row 0 has variance 1.25e-6, below eps = 1e-5, so eps dominates its scale.
  const Td x = Td::from_vector({1.0, 1.001, 0.999, 1.002, 0.0, 1.0, 2.0, 3.0}, {2, 4});
  const Td w = Td::from_vector({1.0, 2.0, 0.5, -1.0}), b = Td::from_vector({0.0, 0.1, -0.2, 0.3});
  // F.layer_norm(x, (4,), w, b, eps=1e-5)
  check_values(layer_norm(x, w, b, 1e-5).to_vector(),
               {-0.14907119849999617, 0.39814239699988718, -0.42360679774998455, -0.14721359549994961,
                -1.3416354199689269, -0.79442361331261779, 0.023605903328154543, -1.0416354199689271},
               1e-10);
  // F.layer_norm(x, (4,), w, b, eps=0.1)
  check_values(layer_norm(x, w, b, 0.1).to_vector(),
               {-0.0015811289480591739, 0.10316225789611755, -0.20237169342208874, 0.29525661315582258,
                -1.2909944487358056, -0.7606629658238705, 0.015165741455967552, -0.99099444873580533},
               1e-10);
}

TEST_CASE("golden: softmax and log_softmax on large logits", "[golden]") {
  // z = [[1000, 1001, 1002], [-1000, 0, 1000], [-745, -745.5, -746]]: exp overflows or underflows
  // without the max subtraction.
  const Td z = Td::from_vector({1000.0, 1001.0, 1002.0, -1000.0, 0.0, 1000.0, -745.0, -745.5, -746.0}, {3, 3});
  // F.softmax(z, dim=-1)
  check_values(softmax(z).to_vector(), {0.090030573170380448, 0.24472847105479761, 0.66524095577482178, 0, 0, 1,
                                        0.50648039105565401, 0.30719588571849837, 0.18632372322584759});
  // F.log_softmax(z, dim=-1)
  check_values(log_softmax(z).to_vector(), {-2.4076059644443806, -1.4076059644443804, -0.40760596444438041, -2000,
                                            -1000, 0, -0.6802696706417346, -1.1802696706417346, -1.6802696706417346},
               1e-11);
  // The same along axis 0 of the transpose.
  check_values(softmax(z.t(), 0).t().to_vector(), softmax(z).to_vector(), 1e-15);

  // float32: F.softmax(z.float(), dim=-1), F.log_softmax(z.float(), dim=-1)
  const auto sf = softmax(to_float(z)).to_vector();
  const std::vector<double> want_sf{0.090030573308467865, 0.24472847580909729, 0.66524094343185425, 0, 0, 1,
                                    0.50648039579391479, 0.30719590187072754, 0.18632373213768005};
  const auto lf = log_softmax(to_float(z)).to_vector();
  const std::vector<double> want_lf{-2.4076058864593506, -1.4076058864593506, -0.40760594606399536, -2000, -1000, 0,
                                    -0.68026965856552124, -1.180269718170166, -1.680269718170166};
  for (size_t i = 0; i < sf.size(); ++i) {
    CHECK(std::isfinite(sf[i]));
    CHECK(sf[i] == Approx(want_sf[i]).margin(1e-6));
    CHECK(lf[i] == Approx(want_lf[i]).epsilon(1e-6).margin(1e-6));
  }
}
