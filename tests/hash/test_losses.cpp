// The six hashing losses (include/vts/hash/losses.hpp, centers.hpp) against the spec.
//
// Golden part: tests/golden/make_loss_golden.py implements each loss from hashing-spec §2/§7.3 in
// float64 PyTorch and stores, for two consecutive batches through one loss object, the loss and
// d loss/d u. Random parts (DPN targets, CSQ rows beyond 2K, tie bits, GreedyHash's W) come from
// the fixture and are injected; Hadamard centers are rebuilt by our code and never injected.
//
// Tolerances (measured on this machine; the bound leaves at least 10x headroom).
//   Loss values, double and float: 1e-5 relative, the project's golden bound. Measured: double
//   ~1e-15, float ~2e-7.
//   Gradients, elementwise with a floor: |a − e| ≤ rtol · max(|e|, floor · max|e|), so an entry
//   that is near zero by cancellation is measured against the tensor's scale, not against itself.
//   double: rtol 1e-5, floor 1e-3. Measured ~6e-8, which is the rounding of the stored float32
//   expectations, not our error.
//   float: rtol 1e-4, floor 1e-2. Float cannot hold 1e-5 on every entry: the bank losses sum
//   40 pair terms per entry (HashNet-compat, DSH, IDHN) and the sums cancel, leaving absolute
//   errors of a few 1e-8 of the tensor's largest entry; measured worst 9e-6 under this bound.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>
#include <vts/vts.hpp>

#include "vts/hash/centers.hpp"
#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#include "vts/io/npz.hpp"
#include "vts/optim/adam.hpp"

namespace {

using Catch::Matchers::Contains;
using vts::Shape;
using vts::hash::CenterMatrix;
namespace hl = vts::hash::loss;

// Relative bounds for the loss value and for gradients, and the gradient floor (see the top).
template <class T>
struct Tol;
template <>
struct Tol<double> {
  static constexpr double loss = 1e-5, grad = 1e-5, floor = 1e-3;
};
template <>
struct Tol<float> {
  static constexpr double loss = 1e-5, grad = 1e-4, floor = 1e-2;
};

constexpr int64_t kTrain = 40;  // N of the fixtures' memory banks
constexpr int64_t kBits[] = {16, 32, 64};

// ---- fixture access -------------------------------------------------------------------------------
class Npz {
 public:
  explicit Npz(const std::string& name)
      : path_(std::string(VTS_TEST_DATA_DIR) + "/losses/" + name), arrays_(vts::io::read_npz(path_)) {}

  const vts::io::Array& operator[](const std::string& key) const {
    const auto it = arrays_.find(key);
    if (it == arrays_.end())
      throw std::runtime_error("fixture " + path_ + " has no key '" + key +
                               "'; rerun tests/golden/make_loss_golden.py");
    return it->second;
  }
  template <class T>
  vts::Tensor<T> tensor(const std::string& key) const {
    const auto& a = (*this)[key];
    return vts::Tensor<T>::from_vector(a.as<T>(), Shape(a.shape));
  }
  std::vector<double> values(const std::string& key) const { return (*this)[key].as<double>(); }
  std::vector<int64_t> indices(const std::string& key) const { return (*this)[key].as<int64_t>(); }
  std::vector<float> floats(const std::string& key) const { return (*this)[key].as<float>(); }
  CenterMatrix centers(const std::string& key) const {
    const auto& a = (*this)[key];
    REQUIRE(a.shape.size() == 2);
    const std::vector<float> flat = a.as<float>();
    CenterMatrix m(static_cast<size_t>(a.shape[0]));
    for (size_t r = 0; r < m.size(); ++r)
      m[r].assign(flat.begin() + static_cast<ptrdiff_t>(r * a.shape[1]),
                  flat.begin() + static_cast<ptrdiff_t>((r + 1) * a.shape[1]));
    return m;
  }
  // The label rows of the batch items `ind`, from the [N, C] table of every training item.
  template <class T>
  vts::Tensor<T> batch_labels(const std::vector<int64_t>& ind) const {
    const auto& a = (*this)["labels"];
    const int64_t C = a.shape[1];
    const std::vector<T> all = a.as<T>();
    std::vector<T> rows;
    for (int64_t i : ind) rows.insert(rows.end(), all.begin() + i * C, all.begin() + (i + 1) * C);
    return vts::Tensor<T>::from_vector(rows, Shape{static_cast<int64_t>(ind.size()), C});
  }
  int64_t classes() const { return (*this)["labels"].shape[1]; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, vts::io::Array> arrays_;
};

const Npz& fixture(const std::string& name) {
  static std::map<std::string, Npz> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, Npz(name)).first;
  return it->second;
}

template <class T>
std::vector<double> as_double(const vts::Tensor<T>& t) {
  const std::vector<T> v = t.to_vector();
  return {v.begin(), v.end()};
}

void check_value(double actual, double expected, double rtol, const std::string& what) {
  INFO(what << ": actual " << actual << ", expected " << expected);
  REQUIRE(std::isfinite(actual));
  CHECK(std::abs(actual - expected) <= rtol * std::abs(expected));
}

void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol, double floor,
                 const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  double scale = 0;
  for (double e : expected) scale = std::max(scale, std::abs(e));
  size_t worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double bound = rtol * std::max(std::abs(expected[i]), floor * scale);
    const double ratio = std::abs(actual[i] - expected[i]) / bound;
    if (!(ratio <= worst_ratio)) {  // also catches NaN
      worst_ratio = ratio;
      worst = i;
    }
  }
  INFO(what << ": worst flat index " << worst << " actual " << actual[worst] << " expected " << expected[worst]
            << " (error " << worst_ratio << " x the bound, max |expected| " << scale << ")");
  CHECK(worst_ratio <= 1.0);
}

// Runs the fixture's two batches through `loss` and compares each loss value and d loss/d u with
// `<name>_K<K>_*`. `after` runs after each backward (GreedyHash checks its classifier there).
template <class T, class Loss, class After>
void check_golden(const Npz& fx, const std::string& name, int64_t K, Loss& loss, int epoch, After&& after) {
  const std::string key = name + "_K" + std::to_string(K);
  const std::vector<double> expected_loss = fx.values(key + "_loss");
  REQUIRE(expected_loss.size() == 2);
  for (int b = 1; b <= 2; ++b) {
    const std::string batch = std::to_string(b);
    const std::vector<int64_t> ind = fx.indices("ind" + batch);
    vts::Tensor<T> u = fx.tensor<T>("u" + batch + "_K" + std::to_string(K));
    u.requires_grad_();
    const vts::Tensor<T> out = loss(u, fx.batch_labels<T>(ind), ind, epoch);
    out.backward();
    const std::string what = fx.path() + " " + key + " batch " + batch + (sizeof(T) == 8 ? " (double)" : " (float)");
    check_value(double(out.item()), expected_loss[static_cast<size_t>(b - 1)], Tol<T>::loss, what + " loss");
    REQUIRE(u.grad().defined());
    check_close(as_double(u.grad()), fx.values(key + "_du" + batch), Tol<T>::grad, Tol<T>::floor, what + " d/du");
    after(b);
  }
}
template <class T, class Loss>
void check_golden(const Npz& fx, const std::string& name, int64_t K, Loss& loss, int epoch) {
  check_golden<T>(fx, name, K, loss, epoch, [](int) {});
}

hl::Config config(const Npz& fx, int64_t K, bool multi, bool compat = false) {
  hl::Config c;
  c.bits = K;
  c.classes = fx.classes();
  c.train_size = kTrain;
  c.multi_label = multi;
  c.reference_compat = compat;
  return c;
}

struct LabelKind {
  const char* file;
  bool multi;
};
constexpr LabelKind kKinds[] = {{"single.npz", false}, {"multi.npz", true}};

}  // namespace

// ---- golden: one test case per loss, double and float ------------------------------------------------

TEMPLATE_TEST_CASE("hash: DSH matches the PyTorch reference over two batches of one memory bank", "[hash][golden]",
                   double, float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits)
      for (bool compat : {false, true}) {
        const Npz& fx = fixture(kind.file);
        vts::Generator gen(1);
        hl::Dsh<TestType> loss(config(fx, K, kind.multi, compat), gen);
        check_golden<TestType>(fx, compat ? "dsh_compat" : "dsh", K, loss, 0);
      }
}

TEMPLATE_TEST_CASE(
    "hash: HashNet matches the reference in-batch with continuation scale and with the compat memory bank",
    "[hash][golden]", double, float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits) {
      const Npz& fx = fixture(kind.file);
      vts::Generator gen(1);
      hl::HashNet<TestType> epoch0(config(fx, K, kind.multi), gen);
      check_golden<TestType>(fx, "hashnet", K, epoch0, 0);
      hl::HashNet<TestType> epoch45(config(fx, K, kind.multi), gen);
      check_golden<TestType>(fx, "hashnet_e45", K, epoch45, 45);
      // Compat at epoch 45: the reference never updates the scale, so tanh(1·u) is expected.
      hl::HashNet<TestType> compat(config(fx, K, kind.multi, true), gen);
      check_golden<TestType>(fx, "hashnet_compat", K, compat, 45);
    }
}

TEMPLATE_TEST_CASE("hash: GreedyHash matches the reference including d loss/d W of the trained classifier",
                   "[hash][golden]", double, float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits) {
      const Npz& fx = fixture(kind.file);
      const vts::Tensor<TestType> W = fx.tensor<TestType>("W_K" + std::to_string(K));
      const std::string key = "greedyhash_K" + std::to_string(K);
      vts::Generator gen(1);

      hl::GreedyHash<TestType> head(config(fx, K, kind.multi), gen);
      head.set_classifier(W);
      REQUIRE(head.parameters().size() == 1);
      vts::Tensor<TestType> w = head.classifier();
      check_golden<TestType>(fx, "greedyhash", K, head, 0, [&](int b) {
        REQUIRE(w.grad().defined());
        check_close(as_double(w.grad()), fx.values(key + "_dW" + std::to_string(b)), Tol<TestType>::grad,
                    Tol<TestType>::floor, fx.path() + " " + key + " d/dW batch " + std::to_string(b));
        w.zero_grad();
      });

      // HEAD raises alpha to 1 on imagenet.
      hl::Config imagenet = config(fx, K, kind.multi);
      imagenet.dataset = "imagenet";
      hl::GreedyHash<TestType> head_in(imagenet, gen);
      head_in.set_classifier(W);
      check_golden<TestType>(fx, "greedyhash_imagenet", K, head_in, 0);

      // Compat: same values as HEAD with alpha 0.1 even on imagenet, but W is frozen: no
      // parameters to hand to the optimizer and no gradient accumulated into it.
      hl::Config compat_cfg = imagenet;
      compat_cfg.reference_compat = true;
      hl::GreedyHash<TestType> compat(compat_cfg, gen);
      compat.set_classifier(W);
      CHECK(compat.parameters().empty());
      check_golden<TestType>(fx, "greedyhash", K, compat, 0,
                             [&](int) { CHECK_FALSE(compat.classifier().grad().defined()); });
      CHECK(compat.classifier().to_vector() == W.to_vector());
    }
}

TEMPLATE_TEST_CASE("hash: IDHN matches the reference over two batches of one memory bank", "[hash][golden]", double,
                   float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits) {
      const Npz& fx = fixture(kind.file);
      vts::Generator gen(1);
      hl::Idhn<TestType> loss(config(fx, K, kind.multi), gen);
      check_golden<TestType>(fx, "idhn", K, loss, 0);
    }
}

TEMPLATE_TEST_CASE("hash: CSQ matches the reference with our own Hadamard centers", "[hash][golden]", double, float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits) {
      const Npz& fx = fixture(kind.file);
      vts::Generator gen(1);
      hl::Csq<TestType> loss(config(fx, K, kind.multi), gen);
      // C ≤ 2K here: the centers are deterministic and must come from our construction. Only the
      // multi-label tie bits are random.
      loss.set_tie_bits(fx.floats("tie_K" + std::to_string(K)));
      check_golden<TestType>(fx, "csq", K, loss, 0);
    }
}

TEMPLATE_TEST_CASE("hash: CSQ with more classes than 2K uses the injected random rows", "[hash][golden]", double,
                   float) {
  const Npz& fx = fixture("csq_c100.npz");
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 100;
  vts::Generator gen(1);
  hl::Csq<TestType> loss(cfg, gen);
  loss.set_centers(fx.centers("centers"));
  vts::Tensor<TestType> u = fx.tensor<TestType>("u");
  u.requires_grad_();
  const auto out = loss(u, fx.tensor<TestType>("labels"), std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, 0);
  out.backward();
  check_value(double(out.item()), fx.values("loss").at(0), Tol<TestType>::loss, "csq C=100 loss");
  check_close(as_double(u.grad()), fx.values("du"), Tol<TestType>::grad, Tol<TestType>::floor, "csq C=100 d/du");
}

TEMPLATE_TEST_CASE("hash: DPN matches the reference with injected targets", "[hash][golden]", double, float) {
  for (const auto& kind : kKinds)
    for (int64_t K : kBits) {
      const Npz& fx = fixture(kind.file);
      vts::Generator gen(1);
      hl::Dpn<TestType> loss(config(fx, K, kind.multi), gen);
      loss.set_targets(fx.centers("dpn_T_K" + std::to_string(K)));
      loss.set_tie_bits(fx.floats("tie_K" + std::to_string(K)));
      check_golden<TestType>(fx, "dpn", K, loss, 0);
    }
}

// ---- centers ------------------------------------------------------------------------------------------

TEST_CASE("hash: hadamard and csq_centers equal the popcount formula computed in Python", "[hash][centers]") {
  const Npz& fx = fixture("centers.npz");
  vts::Generator gen(1);
  for (int64_t K : {1, 2, 4, 8, 16, 32, 64}) {
    INFO("K = " << K);
    CHECK(vts::hash::hadamard(K) == fx.centers("hadamard_K" + std::to_string(K)));
  }
  for (auto [C, K] : {std::pair<int64_t, int64_t>{10, 16}, {21, 16}, {32, 16}, {80, 64}, {100, 64}}) {
    INFO("C = " << C << ", K = " << K);
    CHECK(vts::hash::csq_centers(C, K, gen) == fx.centers("csq_C" + std::to_string(C) + "_K" + std::to_string(K)));
  }
}

TEST_CASE("hash: CSQ random fallback keeps H and -H first and then draws balanced rows reproducibly by seed",
          "[hash][centers]") {
  const int64_t C = 100, K = 16;
  vts::Generator gen(7);
  const CenterMatrix centers = vts::hash::csq_centers(C, K, gen);
  REQUIRE(static_cast<int64_t>(centers.size()) == C);
  const CenterMatrix H = fixture("centers.npz").centers("hadamard_K16");
  for (int64_t i = 0; i < K; ++i) {
    std::vector<float> minus = H[static_cast<size_t>(i)];
    for (float& v : minus) v = -v;
    CHECK(centers[static_cast<size_t>(i)] == H[static_cast<size_t>(i)]);
    CHECK(centers[static_cast<size_t>(i + K)] == minus);
  }
  for (int64_t i = 2 * K; i < C; ++i) {
    const auto& row = centers[static_cast<size_t>(i)];
    REQUIRE(static_cast<int64_t>(row.size()) == K);
    CHECK(std::count(row.begin(), row.end(), -1.0f) == K / 2);
    CHECK(std::count(row.begin(), row.end(), 1.0f) == K / 2);
  }
  vts::Generator same(7), other(8);
  CHECK(vts::hash::csq_centers(C, K, same) == centers);
  CHECK(vts::hash::csq_centers(C, K, other) != centers);
}

TEST_CASE("hash: DPN targets have exactly floor of K times p minus ones per row", "[hash][centers]") {
  vts::Generator gen(3);
  for (auto [K, p, minus] :
       {std::tuple<int64_t, double, int64_t>{16, 0.5, 8}, {48, 0.5, 24}, {7, 0.5, 3}, {10, 0.3, 3}, {32, 0.25, 8}}) {
    INFO("K = " << K << ", p = " << p);
    const CenterMatrix t = vts::hash::dpn_targets(12, K, p, gen);
    REQUIRE(t.size() == 12);
    for (const auto& row : t) {
      REQUIRE(static_cast<int64_t>(row.size()) == K);
      CHECK(std::count(row.begin(), row.end(), -1.0f) == minus);
      CHECK(std::count(row.begin(), row.end(), 1.0f) == K - minus);
    }
  }
  // DPN, unlike CSQ, has no power-of-two requirement.
  hl::Config cfg;
  cfg.bits = 48;
  cfg.classes = 10;
  cfg.train_size = 4;
  CHECK_NOTHROW(hl::Dpn<double>(cfg, gen));
}

TEST_CASE("hash: CSQ refuses a code length that is not a power of two", "[hash][centers]") {
  vts::Generator gen(1);
  for (int64_t K : {12, 24, 48}) {
    hl::Config cfg;
    cfg.bits = K;
    cfg.classes = 10;
    CHECK_THROWS_WITH(hl::Csq<double>(cfg, gen), Contains("power of two") && Contains(std::to_string(K)));
  }
}

TEST_CASE("hash: injected centers and tie bits are validated", "[hash][centers]") {
  vts::Generator gen(1);
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 10;
  cfg.train_size = 4;
  hl::Csq<double> csq(cfg, gen);
  CHECK_THROWS_WITH(csq.set_centers(CenterMatrix(9, std::vector<float>(16, 1.0f))), Contains("10 rows"));
  CHECK_THROWS_WITH(csq.set_centers(CenterMatrix(10, std::vector<float>(8, 1.0f))), Contains("[10, 16]"));
  CHECK_THROWS_WITH(csq.set_centers(CenterMatrix(10, std::vector<float>(16, 0.5f))), Contains("0.5"));
  CHECK_THROWS_WITH(csq.set_tie_bits(std::vector<float>(15, 0.0f)), Contains("16"));
  CHECK_THROWS_WITH(csq.set_tie_bits(std::vector<float>(16, -1.0f)), Contains("0 or 1"));
  hl::GreedyHash<double> gh(cfg, gen);
  CHECK_THROWS_WITH(gh.set_classifier(vts::Tensor<double>::zeros(Shape{16, 10})),
                    Contains("[10, 16]") && Contains("[16, 10]"));
}

// ---- hand-computed cases ------------------------------------------------------------------------------

TEST_CASE("hash: DPN-A end_epoch ternarises the bank and re-estimates the targets", "[hash][dpn]") {
  hl::Config cfg;
  cfg.bits = 4;
  cfg.classes = 2;
  cfg.train_size = 3;
  vts::Generator gen(1);
  hl::Dpn<double> loss(cfg, gen);
  const CenterMatrix initial{{1, 1, -1, -1}, {-1, 1, -1, 1}};
  loss.set_targets(initial);
  // Item 0 is class 0, item 1 class 1, item 2 both. m = 1 and the ternary rule is strict:
  // |1.0| is not > 1, so it becomes 0.
  const std::vector<double> u{2.0,  -0.5, -3.0, 1.0,    //
                              1.5,  2.0,  1.2,  -4.0,   //
                              -2.0, 3.0,  0.9,  -1.1};  //
  const std::vector<double> y{1, 0, 0, 1, 1, 1};
  const auto U = vts::Tensor<double>::from_vector(u, Shape{3, 4});
  const auto Y = vts::Tensor<double>::from_vector(y, Shape{3, 2});
  loss(U, Y, {0, 1, 2}, 0);

  loss.end_epoch();  // adaptive_targets is off: nothing may change
  CHECK(loss.targets() == initial);

  loss.adaptive_targets = true;
  loss.end_epoch();
  // ternary rows: [1, 0, -1, 0], [1, 1, 1, -1], [-1, 1, 0, -1]
  // class 0 = row0 + row2 = [0, 1, -1, -1];  class 1 = row1 + row2 = [0, 2, 1, -2]
  CHECK(loss.targets() == CenterMatrix{{0, 1, -1, -1}, {0, 1, 1, -1}});
  std::vector<double> bank;
  loss.state([&](const std::string& key, vts::Tensor<double>& t) {
    if (key == "U") bank = t.to_vector();
  });
  CHECK(bank == std::vector<double>{1, 0, -1, 0, 1, 1, 1, -1, -1, 1, 0, -1});

  // The new targets drive the loss; a 0 target gives the constant hinge m − 0 = 1.
  // u = [0.5, 0.5, 0.5, 0.5] as class 0, target [0, 1, -1, -1]:
  // max(0, 1 − [0, 0.5, −0.5, −0.5]) = [1, 0.5, 1.5, 1.5], mean 1.125.
  const auto u1 = vts::Tensor<double>::full(Shape{1, 4}, 0.5);
  const auto y1 = vts::Tensor<double>::from_vector({1, 0}, Shape{1, 2});
  CHECK(loss(u1, y1, {0}, 1).item() == Approx(1.125).epsilon(1e-12));
}

TEST_CASE("hash: CSQ keeps the BCE log clamp at -100 when tanh saturates", "[hash][csq]") {
  // K = 2, one class: center = H_2 row 0 = [1, 1], so both targets are 1. u = [−20, 0] gives
  // h = [−1 exactly, 0], p = [0, 0.5]: BCE = (100 + log 2)/2, quantization = (0 + 1)/2.
  hl::Config cfg;
  cfg.bits = 2;
  cfg.classes = 1;
  vts::Generator gen(1);
  const double expected = (100.0 + std::log(2.0)) / 2.0 + 1e-4 * 0.5;
  hl::Csq<double> d(cfg, gen);
  CHECK(d(vts::Tensor<double>::from_vector({-20.0, 0.0}, Shape{1, 2}), vts::Tensor<double>::ones(Shape{1, 1}), {0}, 0)
            .item() == Approx(expected).epsilon(1e-12));
  hl::Csq<float> f(cfg, gen);
  CHECK(f(vts::Tensor<float>::from_vector({-20.0f, 0.0f}, Shape{1, 2}), vts::Tensor<float>::ones(Shape{1, 1}), {0}, 0)
            .item() == Approx(expected).epsilon(1e-6));
}

TEST_CASE("hash: CSQ's fused loss equals the spec's composite, value and d/du, saturated codes included",
          "[hash][csq]") {
  // The composite written as hashing-spec §2.5 states it (what Csq computed before csq_loss): codes
  // spread over ±12 so some tanh values round to exactly ±1 (log clamped at −100), center values ±1
  // and a mixed one (a mixup row), λ large enough that the quantization term matters.
  auto composite = [](const auto& u, const auto& c, auto lambda) {
    using T = decltype(lambda);
    const auto h = tanh(u);
    return binary_cross_entropy((h + T(1)) * T(0.5), (c + T(1)) * T(0.5)) + lambda * mean(pow(abs(h) - T(1), T(2)));
  };
  auto check = [&](auto zero, double tol) {
    using T = decltype(zero);
    using Tt = vts::Tensor<T>;
    vts::Generator gen(5);
    std::vector<T> uv(48), cv(48);
    for (size_t i = 0; i < uv.size(); ++i) {
      uv[i] = T(24.0 * gen.next_double() - 12.0);
      cv[i] = i % 7 == 3 ? T(0.5) : (gen.next_u32() & 1u ? T(1) : T(-1));
    }
    uv[0] = T(0);  // sign(0) = 0 in the quantization gradient
    const Tt c = Tt::from_vector(cv, Shape{6, 8});
    for (const T lambda : {T(1e-4), T(0.7)}) {
      INFO("lambda " << double(lambda));
      Tt u1 = Tt::from_vector(uv, Shape{6, 8}).requires_grad_(), u2 = Tt::from_vector(uv, Shape{6, 8}).requires_grad_();
      const Tt fused = csq_loss(u1, c, lambda), reference = composite(u2, c, lambda);
      CHECK(double(fused.item()) == Approx(double(reference.item())).epsilon(tol));
      (fused * T(3)).backward();
      (reference * T(3)).backward();
      const std::vector<T> g1 = u1.grad().to_vector(), g2 = u2.grad().to_vector();
      for (size_t i = 0; i < g1.size(); ++i) {
        INFO("element " << i << " u " << double(uv[i]));
        CHECK(double(g1[i]) == Approx(double(g2[i])).epsilon(tol).margin(tol * 1e-3));
      }
    }
  };
  check(0.0, 1e-12);
  check(0.0f, 2e-6);
}

TEST_CASE("hash: CSQ with a mixed label row targets the weighted mean of the two centers", "[hash][csq][mixup]") {
  // 3 classes, K = 4: Hadamard rows 0..2. Row 0 is one-hot (its center exactly); row 1 is
  // 0.25 class 0 + 0.75 class 2; row 2 carries weights that do not sum to 1 (normalised).
  hl::Config cfg;
  cfg.bits = 4;
  cfg.classes = 3;
  vts::Generator gen(1);
  hl::Csq<double> csq(cfg, gen);
  const auto& c = csq.assigner().centers();
  const auto y = vts::Tensor<double>::from_vector({0, 1, 0, 0.25, 0, 0.75, 0.2, 0.2, 0}, Shape{3, 3});
  const std::vector<double> t = csq.centers_for(y).to_vector();
  for (size_t k = 0; k < 4; ++k) {
    CHECK(t[k] == c[1][k]);
    CHECK(t[4 + k] == Approx(0.25 * c[0][k] + 0.75 * c[2][k]).epsilon(1e-7));
    CHECK(t[8 + k] == Approx(0.5 * c[0][k] + 0.5 * c[1][k]).epsilon(1e-7));
  }
  // Where the two centers agree the target stays ±1; where they differ it is 2λ − 1.
  int agree = 0;
  for (size_t k = 0; k < 4; ++k) agree += c[0][k] == c[2][k];
  CHECK(agree == 2);
}

namespace {
// Two 2-bit HashNet outputs, and the mean over their four pairs of log(1 + e^{sign·θ}) with
// θ = α·tanh(u_i)·tanh(u_j), α = 0.1: the pair loss softplus(θ) − s·θ when every pair is negative
// (s = 0: sign +1) or every pair positive (s = 1: softplus(θ) − θ = log(1 + e^{−θ}), sign −1).
const std::vector<double> kTwoCodes{0.3, -1.2, 2.0, 0.4};
double two_code_pair_mean(const std::vector<double>& u, double sign) {
  double mean = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      const double theta = 0.1 * (std::tanh(u[2 * i]) * std::tanh(u[2 * j]) +
                                  std::tanh(u[2 * i + 1]) * std::tanh(u[2 * j + 1]));
      mean += std::log1p(std::exp(sign * theta)) / 4;
    }
  return mean;
}
}  // namespace

TEST_CASE("hash: HashNet with no positive pair is the mean over negatives and not NaN", "[hash][hashnet]") {
  // Two all-zero label rows: even the diagonal is negative (y·y = 0), so S1 = 0.
  hl::Config cfg;
  cfg.bits = 2;
  cfg.classes = 3;
  vts::Generator gen(1);
  hl::HashNet<double> loss(cfg, gen);
  const std::vector<double> u = kTwoCodes;
  const double expected = two_code_pair_mean(u, +1);
  const auto out =
      loss(vts::Tensor<double>::from_vector(u, Shape{2, 2}), vts::Tensor<double>::zeros(Shape{2, 3}), {0, 1}, 0);
  CHECK(out.item() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("hash: HashNet with no negative pair is the mean over positives and not NaN", "[hash][hashnet]") {
  // Both rows are class 0, so every entry of S is 1 (S0 = 0) and the loss is the mean over the
  // four positive pairs of softplus(θ) − θ = log(1 + e^{−θ}); the empty negative side adds
  // nothing (§2.2). Compat with a bank of exactly these two items sees the same S and θ.
  const std::vector<double> u = kTwoCodes;
  const double expected = two_code_pair_mean(u, -1);
  for (bool compat : {false, true}) {
    INFO((compat ? "reference_compat" : "HEAD"));
    hl::Config cfg;
    cfg.bits = 2;
    cfg.classes = 3;
    cfg.train_size = 2;
    cfg.reference_compat = compat;
    vts::Generator gen(1);
    hl::HashNet<double> loss(cfg, gen);
    const auto out = loss(vts::Tensor<double>::from_vector(u, Shape{2, 2}),
                          vts::Tensor<double>::from_vector({1, 0, 0, 1, 0, 0}, Shape{2, 3}), {0, 1}, 0);
    CHECK(out.item() == Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("hash: hyperparameters are listed, set and refused by name", "[hash][hyperparameters]") {
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 3;
  cfg.train_size = 4;
  vts::Generator gen(1);
  // What each loss offers (vts train --loss-param names them in its help).
  const std::map<std::string, std::string> expected{
      {"dsh", "alpha 0.1"}, {"hashnet", "alpha 0.1, step_continuation 20"}, {"greedyhash", "alpha 0.1"},
      {"idhn", "alpha 0.5, gamma 0.1, lambda 0.1"}, {"csq", "lambda 0.0001"}, {"dpn", "margin 1, adaptive_targets 0"}};
  for (const auto& name : hl::names()) {
    INFO(name);
    const std::string listed = hl::dispatch<float, vts::Cpu>(name, [&]<class Loss>() {
      Loss loss(cfg, gen);
      return hl::describe(hl::hyperparameters(loss));
    });
    CHECK(listed == expected.at(name));
  }

  hl::HashNet<float> hashnet(cfg, gen);
  const auto listed = hl::hyperparameters(hashnet);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].value == 0.1);  // the float's shortest decimal, as metrics.json shows it
  CHECK(listed[0].kind == hl::HyperparameterKind::real);
  CHECK(listed[1].kind == hl::HyperparameterKind::count);
  hl::set_hyperparameter(hashnet, "alpha", 0.4);
  hl::set_hyperparameter(hashnet, "step_continuation", 5);
  CHECK(hashnet.alpha == 0.4f);
  CHECK(hashnet.step_continuation == 5);
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "beta", 1),
                    "hashnet loss has no hyperparameter 'beta'; its hyperparameters: alpha 0.4, step_continuation 5");
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "alpha", -1),
                    "hashnet loss: alpha = -1; expected a number from 0 to 3.40282e+38");
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "alpha", 1e300), Contains("expected a number from 0 to"));
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "alpha", std::nan("")), Contains("expected a number from 0 to"));
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "step_continuation", 2.5),
                    "hashnet loss: step_continuation = 2.5; expected a whole number from 1 to 1000000");
  CHECK_THROWS_WITH(hl::set_hyperparameter(hashnet, "step_continuation", 0), Contains("a whole number from 1"));
  CHECK(hashnet.alpha == 0.4f);  // a refused value changes nothing
  CHECK(hashnet.step_continuation == 5);

  hl::Dpn<float> dpn(cfg, gen);
  hl::set_hyperparameter(dpn, "adaptive_targets", 1);
  CHECK(dpn.adaptive_targets);
  CHECK_THROWS_WITH(hl::set_hyperparameter(dpn, "adaptive_targets", 0.5),
                    "dpn loss: adaptive_targets = 0.5; expected 0 (off) or 1 (on)");

  // The value reaches the loss: with alpha = 0 every θ is 0, so each side's mean is softplus(0) =
  // log 2 and the loss is 2 log 2 whatever the codes.
  hl::HashNet<double> flat(cfg, gen);
  hl::set_hyperparameter(flat, "alpha", 0);
  std::vector<double> u(2 * 16);
  for (size_t i = 0; i < u.size(); ++i) u[i] = std::sin(double(i));
  const auto out = flat(vts::Tensor<double>::from_vector(u, Shape{2, 16}),
                        vts::Tensor<double>::from_vector({1, 0, 0, 0, 1, 0}, Shape{2, 3}), {0, 1}, 0);
  CHECK(out.item() == Approx(2 * std::log(2.0)).epsilon(1e-12));
}

TEST_CASE("hash: IDHN takes s > 0.99 and s < 0.01 as hard pairs and everything between as soft", "[hash][idhn]") {
  // u = 0 makes v = 0 and θ = 0 for every pair (§2.4), so a hard pair costs softplus(0) = log 2
  // (CE) and a soft pair γ·(θ + K − 2sK)² = γK²(1 − 2s)² (MSE); the quantization term is
  // λ·mean|0 − 1| = λ. Three items over 30 classes, the bank holding exactly the batch:
  //   item 0: classes 0..4 (5 labels), item 1: classes 0..5 (6), item 2: class 0 and 6..29 (25).
  // Off the diagonal s01 = 5/√30 ≈ 0.913, s02 = 1/√125 ≈ 0.089 and s12 = 1/√150 ≈ 0.082: all soft,
  // close enough to the thresholds that moving 0.99 down to 0.9 or 0.01 up to 0.09 changes the
  // value. The diagonal has s = 1/(1 + 1e-5) > 0.99: hard.
  const int64_t K = 2, C = 30;
  std::vector<double> y(static_cast<size_t>(3 * C), 0.0);
  for (int c = 0; c <= 4; ++c) y[static_cast<size_t>(c)] = 1;
  for (int c = 0; c <= 5; ++c) y[static_cast<size_t>(C + c)] = 1;
  y[static_cast<size_t>(2 * C)] = 1;
  for (int c = 6; c < C; ++c) y[static_cast<size_t>(2 * C + c)] = 1;
  const double s01 = 5 / (std::sqrt(5.0 * 6.0) + 1e-5), s02 = 1 / (std::sqrt(5.0 * 25.0) + 1e-5),
               s12 = 1 / (std::sqrt(6.0 * 25.0) + 1e-5);
  auto soft = [&](double s) { return 0.1 * double(K * K) * (1 - 2 * s) * (1 - 2 * s); };
  const double expected = (3 * std::log(2.0) + 2 * (soft(s01) + soft(s02) + soft(s12))) / 9 + 0.1;
  hl::Config cfg;
  cfg.bits = K;
  cfg.classes = C;
  cfg.train_size = 3;
  vts::Generator gen(1);
  hl::Idhn<double> loss(cfg, gen);
  const auto out = loss(vts::Tensor<double>::zeros(Shape{3, K}), vts::Tensor<double>::from_vector(y, Shape{3, C}),
                        {0, 1, 2}, 0);
  CHECK(out.item() == Approx(expected).epsilon(1e-12));
}

TEST_CASE("hash: HashNet continuation scale", "[hash][hashnet]") {
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 10;
  cfg.train_size = 4;
  vts::Generator gen(1);
  hl::HashNet<double> head(cfg, gen);
  CHECK(head.scale(0) == 1.0);
  CHECK(head.scale(19) == 1.0);
  CHECK(head.scale(20) == Approx(std::sqrt(2.0)));
  CHECK(head.scale(45) == Approx(std::sqrt(3.0)));
  CHECK(head.scale(149) == Approx(std::sqrt(8.0)));
  cfg.reference_compat = true;
  hl::HashNet<double> compat(cfg, gen);
  CHECK(compat.scale(149) == 1.0);
}

TEMPLATE_TEST_CASE("hash: shape errors name the expected and the found shape", "[hash][errors]", hl::Dsh<double>,
                   hl::HashNet<double>, hl::GreedyHash<double>, hl::Idhn<double>, hl::Csq<double>, hl::Dpn<double>) {
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 10;
  cfg.train_size = 8;
  cfg.reference_compat = true;  // HashNet then has a bank too
  vts::Generator gen(1);
  TestType loss(cfg, gen);
  const std::vector<int64_t> ind{0, 1, 2, 3, 4, 5, 6, 7};
  using Td = vts::Tensor<double>;
  CHECK_THROWS_AS(loss(Td::zeros(Shape{8, 17}), Td::zeros(Shape{8, 10}), ind, 0), vts::ShapeError);
  CHECK_THROWS_WITH(loss(Td::zeros(Shape{8, 17}), Td::zeros(Shape{8, 10}), ind, 0),
                    Contains("[8, 16]") && Contains("[8, 17]") && Contains(TestType::name));
  CHECK_THROWS_WITH(loss(Td::zeros(Shape{8, 16}), Td::zeros(Shape{8, 11}), ind, 0),
                    Contains("[8, 10]") && Contains("[8, 11]"));
  CHECK_THROWS_WITH(loss(Td::zeros(Shape{8, 16}), Td::zeros(Shape{7, 10}), ind, 0),
                    Contains("[8, 10]") && Contains("[7, 10]"));
  CHECK_THROWS_WITH(loss(Td::zeros(Shape{8, 16}), Td::zeros(Shape{8, 10}), std::vector<int64_t>{0, 1}, 0),
                    Contains("2 indices") && Contains("8"));
}

// The memory bank is sized by Config::train_size, which defaults to 0: a researcher who leaves it
// out (or passes another split's size) must be told so, not given index_copy_'s row message.
TEMPLATE_TEST_CASE("hash: a memory bank too small for the dataset indices names train_size", "[hash][errors]",
                   hl::Dsh<double>, hl::HashNet<double>, hl::Idhn<double>, hl::Dpn<double>) {
  hl::Config cfg;
  cfg.bits = 16;
  cfg.classes = 10;
  cfg.reference_compat = true;  // HashNet then has a bank too
  vts::Generator gen(1);
  using Td = vts::Tensor<double>;
  const Td u = Td::zeros(Shape{2, 16}), y = Td::zeros(Shape{2, 10});
  {
    TestType forgotten(cfg, gen);  // train_size left at 0
    CHECK_THROWS_WITH(forgotten(u, y, {0, 1}, 0), Contains(TestType::name) && Contains("dataset index 0") &&
                                                      Contains("memory bank of 0 rows") && Contains("train_size"));
  }
  cfg.train_size = 8;
  TestType loss(cfg, gen);
  CHECK_THROWS_WITH(loss(u, y, {7, 8}, 0), Contains("dataset index 8") && Contains("memory bank of 8 rows"));
  CHECK_THROWS_WITH(loss(u, y, {-1, 0}, 0), Contains("dataset index -1"));
  CHECK_NOTHROW(loss(u, y, {0, 7}, 0));
}

// ---- gradients through the hash head, against finite differences ---------------------------------------
// The golden cases check d loss/d u against PyTorch; these check the backward from each loss through
// the default (all-token) hash head into its parameters and its input tokens with vts::gradcheck
// (double). Two kinds of loss cannot be checked this way, by design:
//  - a memory-bank loss stores the batch's detached outputs before it computes, so a perturbed u
//    also moves its own bank row, which the gradient treats as a constant. DSH with a batch of one
//    item is still exact (its only moving pair is the item with itself: distance 0 and slope 0
//    either way); IDHN and HashNet-compat rely on the golden d/du.
//  - GreedyHash passes sign(u) forward and the gradient straight through (sign_ste), which finite
//    differences cannot see: its classifier W is checked here, d/du by the golden case.
namespace {
using Td = vts::Tensor<double>;

void check_grad(const std::function<Td(const std::vector<Td>&)>& f, std::vector<Td> inputs) {
  const vts::GradcheckResult r = vts::gradcheck<vts::Cpu>(f, std::move(inputs));
  INFO("gradcheck: " << r.message << " (max abs error " << r.max_abs_error << ")");
  CHECK(r.ok);
}

Td uniform(const Shape& shape, uint64_t seed, double lo, double hi) {
  vts::Generator g(seed);
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) x = lo + (hi - lo) * g.next_double();
  return Td::from_vector(v, shape);
}
}  // namespace

TEST_CASE("hash: each loss's gradient through the all-token hash head matches finite differences", "[hash][grad]") {
  constexpr int64_t kTokens = 3, kDim = 4, K = 4, C = 3;
  vts::Generator gen(21);
  vts::hash::AllTokenHead<5, double> head(kTokens, kDim, K, gen);
  std::vector<Td> params = vts::nn::parameters(head);
  for (size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(uniform(params[i].shape(), 40 + i, -0.6, 0.6));
  // Three items; 0 and 2 share a class, so every loss sees similar and dissimilar pairs.
  const Td y = Td::from_vector({1, 0, 0, 0, 1, 0, 1, 0, 0}, Shape{3, C});
  const std::vector<int64_t> ind{0, 1, 2};
  std::vector<Td> inputs{uniform({3, kTokens, kDim}, 30, -1, 1)};
  inputs.insert(inputs.end(), params.begin(), params.end());
  // loss(head(tokens)) in training mode, one dropout mask for every evaluation.
  auto through_head = [&](auto& loss, int epoch) {
    return [&loss, &head, &y, &ind, epoch](const std::vector<Td>& in) {
      vts::Generator drops(5);
      vts::nn::Context ctx{true, &drops};
      return loss(head.forward(in[0], ctx), y, ind, epoch);
    };
  };
  hl::Config cfg;
  cfg.bits = K;
  cfg.classes = C;
  cfg.train_size = 8;
  SECTION("CSQ, with a quantization weight large enough to matter") {
    hl::Csq<double> loss(cfg, gen);
    loss.lambda = 0.5;
    check_grad(through_head(loss, 0), inputs);
  }
  SECTION("DPN") {
    hl::Dpn<double> loss(cfg, gen);
    check_grad(through_head(loss, 0), inputs);
  }
  SECTION("HashNet at continuation scales 1 and sqrt 3") {
    hl::HashNet<double> loss(cfg, gen);
    check_grad(through_head(loss, 0), inputs);
    check_grad(through_head(loss, 45), inputs);
  }
  SECTION("DSH, one item against a bank filled with others") {
    hl::Dsh<double> loss(cfg, gen);
    // Items 3..5 in the bank: one of the query's class, two of others; rows 6, 7 stay empty.
    (void)loss(uniform({3, K}, 31, -1.5, 1.5), Td::from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1}, Shape{3, C}), {3, 4, 5}, 0);
    const Td y0 = Td::from_vector({1, 0, 0}, Shape{1, C});
    std::vector<Td> one{uniform({1, kTokens, kDim}, 32, -1, 1)};
    one.insert(one.end(), params.begin(), params.end());
    check_grad([&](const std::vector<Td>& in) {
      vts::Generator drops(6);
      vts::nn::Context ctx{true, &drops};
      return loss(head.forward(in[0], ctx), y0, {0}, 0);
    }, one);
  }
  SECTION("GreedyHash: its trained classifier W") {
    hl::GreedyHash<double> loss(cfg, gen);
    const Td u = uniform({3, K}, 33, -1.5, 1.5);
    check_grad([&](const std::vector<Td>&) { return loss(u, y, ind, 0); }, {loss.classifier()});
  }
}

// ---- learnability --------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("hash: every loss decreases over 50 Adam steps on free outputs", "[hash][learn]", hl::Dsh<double>,
                   hl::HashNet<double>, hl::GreedyHash<double>, hl::Idhn<double>, hl::Csq<double>, hl::Dpn<double>) {
  // A fixed tiny batch: 6 items, 16 bits, classes {0, 0, 1, 1, 2, 3}; u itself is the parameter.
  // DSH-compat is included: its quantization term has zero gradient, but the pair term still
  // learns, so the total must still fall.
  for (bool compat : {false, true}) {
    INFO(TestType::name << (compat ? " (reference_compat)" : ""));
    hl::Config cfg;
    cfg.bits = 16;
    cfg.classes = 4;
    cfg.train_size = 6;
    cfg.reference_compat = compat;
    vts::Generator gen(11);
    TestType loss(cfg, gen);
    std::vector<double> u0(6 * 16);
    for (double& v : u0) v = 0.5 * gen.next_normal();
    auto u = vts::Tensor<double>::from_vector(u0, Shape{6, 16});
    u.requires_grad_();
    const auto y = vts::Tensor<double>::from_vector(
        {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, Shape{6, 4});
    const std::vector<int64_t> ind{0, 1, 2, 3, 4, 5};
    std::vector<vts::Tensor<double>> params{u};
    for (auto& p : loss.parameters()) params.push_back(p);
    vts::optim::Adam<double> adam(params, {.lr = 0.05});
    double first = 0, last = 0;
    for (int step = 0; step < 50; ++step) {
      adam.zero_grad();
      const auto out = loss(u, y, ind, 0);
      out.backward();
      adam.step();
      (step == 0 ? first : last) = out.item();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(std::isfinite(last));
    CHECK(last < 0.9 * first);
  }
}
