// Elementwise maps and reductions against vts::cpu on the same inputs.
#include "cuda_test_util.hpp"
#include "vts/backend/cpu/elementwise.hpp"
#include "vts/backend/cpu/reduce.hpp"
#include "vts/backend/cuda/elementwise.hpp"
#include "vts/backend/cuda/reduce.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/indexing.hpp"
#include "vts/ops/reduce.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {

template <class F>
void check_unary(F f, const std::vector<float>& x, const Shape& shape, const Strides& xs, double tol) {
  Buf<float> dx(x), dout(static_cast<size_t>(shape.numel()));
  dout.poison();
  cuda::unary_map(Cuda{}, shape, dx.data(), xs.data(), dout.data(), f);
  std::vector<float> ref(static_cast<size_t>(shape.numel()));
  cpu::unary_map(Cpu{}, shape, x.data(), xs.data(), ref.data(), f);
  CHECK(rel_err(dout.download(), ref) < tol);
}

template <class F>
void check_binary(F f, const std::vector<float>& a, const Strides& as, const std::vector<float>& b,
                  const Strides& bs, const Shape& shape) {
  Buf<float> da(a), db(b), dout(static_cast<size_t>(shape.numel()));
  dout.poison();
  cuda::binary_map(Cuda{}, shape, da.data(), as.data(), db.data(), bs.data(), dout.data(), f);
  std::vector<float> ref(static_cast<size_t>(shape.numel()));
  cpu::binary_map(Cpu{}, shape, a.data(), as.data(), b.data(), bs.data(), ref.data(), f);
  CHECK(rel_err(dout.download(), ref) < kTolF32);
}

}  // namespace

TEST_CASE("unary_map: functors of core/functors.hpp, contiguous and strided", "[elementwise]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const Shape& shape : {Shape{1001}, Shape{197, 64}, Shape{3, 5, 7}}) {
    INFO("shape " << shape.str());
    const auto x = rng.normal(static_cast<size_t>(shape.numel()));
    const auto xs = contiguous_strides(shape);
    check_unary(fn::Neg{}, x, shape, xs, kTolF32);
    check_unary(fn::Exp{}, x, shape, xs, kTolF32);
    check_unary(fn::Tanh{}, x, shape, xs, kTolF32);
    check_unary(fn::Sigmoid{}, x, shape, xs, kTolF32);
    check_unary(fn::Softplus{}, x, shape, xs, kTolF32);
    check_unary(fn::Relu{}, x, shape, xs, kTolF32);
    check_unary(fn::Sign{}, x, shape, xs, kTolF32);
    check_unary(fn::Abs{}, x, shape, xs, kTolF32);
    check_unary(fn::Gelu{}, x, shape, xs, kTolF32);
    check_unary(fn::GeluGrad{}, x, shape, xs, kTolF32);
    check_unary(fn::MulScalar<float>{-1.75f}, x, shape, xs, kTolF32);
    check_unary(fn::Clamp<float>{-0.5f, 0.25f}, x, shape, xs, kTolF32);
    check_unary(fn::PowScalar<float>{2.0f}, x, shape, xs, kTolF32);
    const auto pos = rng.uniform(x.size(), 0.1f, 4.0f);
    check_unary(fn::Log{}, pos, shape, xs, kTolF32);
    check_unary(fn::Sqrt{}, pos, shape, xs, kTolF32);
    check_unary(fn::RDivScalar<float>{3.0f}, pos, shape, xs, kTolF32);
  }
  // A transposed view: x is [7, 5] read as its [5, 7] transpose.
  const auto x = rng.normal(35);
  check_unary(fn::Exp{}, x, Shape{5, 7}, Strides{1, 5}, kTolF32);
}

TEST_CASE("binary_map with broadcasting", "[elementwise]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const Shape shape{6, 197, 32};
  const auto a = rng.normal(static_cast<size_t>(shape.numel()));
  const auto full = contiguous_strides(shape);
  const auto bias = rng.normal(32);
  const auto col = rng.uniform(6 * 197, 0.5f, 2.0f);
  check_binary(fn::Add{}, a, full, bias, Strides{0, 0, 1}, shape);
  check_binary(fn::Mul{}, a, full, col, Strides{197, 1, 0}, shape);
  check_binary(fn::Div{}, a, full, col, Strides{197, 1, 0}, shape);
  check_binary(fn::Sub{}, bias, Strides{0, 0, 1}, a, full, shape);
  const auto b = rng.normal(a.size());
  check_binary(fn::Maximum{}, a, full, b, full, shape);
  check_binary(fn::Minimum{}, a, full, b, full, shape);
}

TEST_CASE("bf16 maps compute in fp32 and round once", "[elementwise]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const Shape shape{129, 33};
  const auto x = round_bf16(rng.normal(static_cast<size_t>(shape.numel())));
  const auto xs = contiguous_strides(shape);
  Buf<bf16> dx(to_bf16(x)), dout(x.size());
  dout.poison();
  cuda::unary_map(Cuda{}, shape, dx.data(), xs.data(), dout.data(), fn::Gelu{});
  std::vector<float> ref(x.size());
  cpu::unary_map(Cpu{}, shape, x.data(), xs.data(), ref.data(), fn::Gelu{});
  CHECK(rel_err(dout.download(), ref) < kTolBf16);
  dout.poison();
  cuda::unary_map(Cuda{}, shape, dx.data(), xs.data(), dout.data(), fn::AddScalar<bf16>{bf16(0.5f)});
  cpu::unary_map(Cpu{}, shape, x.data(), xs.data(), ref.data(), fn::AddScalar<float>{0.5f});
  CHECK(rel_err(dout.download(), ref) < kTolBf16);
}

TEST_CASE("accumulate and convert", "[elementwise]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (size_t n : {size_t(1), size_t(7), size_t(4096), size_t(100003)}) {
    const auto a = rng.normal(n), b = rng.normal(n);
    Buf<float> da(a), db(b);
    cuda::accumulate(Cuda{}, da.data(), db.data(), static_cast<int64_t>(n));
    std::vector<float> ref = a;
    cpu::accumulate(Cpu{}, ref.data(), b.data(), static_cast<int64_t>(n));
    CHECK(rel_err(da.download(), ref) < kTolF32);
    Buf<bf16> h(n);
    h.poison();
    cuda::convert(Cuda{}, db.data(), h.data(), static_cast<int64_t>(n));
    const auto hb = h.download();
    for (size_t i = 0; i < n; ++i) REQUIRE(hb[i].bits == bf16(b[i]).bits);
    Buf<float> back(n);
    back.poison();
    cuda::convert(Cuda{}, h.data(), back.data(), static_cast<int64_t>(n));
    CHECK(bit_differences(back.download(), to_float(hb)) == "");
  }
}

TEST_CASE("sum_middle over [A, R, C] matches the CPU", "[elementwise][reduce]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  struct Case {
    int64_t A, R, C;
  };
  // R ≤ 64 ({3, 5, 7}, {2, 64, 300}): one chunk, written by the first stage alone.
  for (const Case& c : {Case{1, 6304, 768}, Case{12, 197, 1}, Case{3, 5, 7}, Case{2, 64, 300}, Case{1, 100000, 1},
                        Case{4, 3000, 33}, Case{2, 0, 5}}) {
    INFO("A=" << c.A << " R=" << c.R << " C=" << c.C);
    // Positive values for the one long row: a sum of 10⁵ normals can land near 0, where a relative
    // error says nothing about the kernel.
    const size_t count = static_cast<size_t>(c.A * c.R * c.C);
    const auto x = c.C == 1 && c.R > 10000 ? rng.uniform(count, 0.0f, 1.0f) : rng.normal(count);
    Buf<float> dx(x), dout(static_cast<size_t>(c.A * c.C));
    dout.poison();
    cuda::sum_middle(Cuda{}, dx.data(), c.A, c.R, c.C, dout.data());
    std::vector<float> ref(static_cast<size_t>(c.A * c.C));
    cpu::sum_middle(Cpu{}, x.data(), c.A, c.R, c.C, ref.data());
    CHECK(rel_err(dout.download(), ref) < 1e-5);

    // bf16 in and out (fp32 accumulation): against the CPU's fp32 sum of the same rounded inputs.
    const auto xb = round_bf16(x);
    cpu::sum_middle(Cpu{}, xb.data(), c.A, c.R, c.C, ref.data());
    auto dxb = bf16_buf(xb);
    Buf<bf16> doutb(static_cast<size_t>(c.A * c.C));
    doutb.poison();
    cuda::sum_middle(Cuda{}, dxb.data(), c.A, c.R, c.C, doutb.data());
    CHECK(rel_err(doutb.download(), ref) < kTolBf16);
  }
}

TEST_CASE("sum_all, max_rows (NaN and ties) and scatter_rows_at", "[elementwise][reduce]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const auto x = rng.normal(1234567);
  Buf<float> dx(x), dsum(1);
  dsum.poison();
  cuda::sum_all(Cuda{}, dx.data(), static_cast<int64_t>(x.size()), dsum.data());
  double ref = 0;
  for (float v : x) ref += v;
  CHECK(std::abs(dsum.download()[0] - ref) < 1e-4 * std::sqrt(double(x.size())));

  const int64_t A = 37, R = 197;
  auto m = rng.normal(static_cast<size_t>(A * R));
  m[5 * R + 17] = NAN;        // NaN wins
  m[5 * R + 100] = NAN;       // ... the first one
  m[9 * R + 3] = 50.0f;       // a tie: the first index wins
  m[9 * R + 150] = 50.0f;
  Buf<float> dm(m), dmax(static_cast<size_t>(A));
  Buf<int64_t> darg(static_cast<size_t>(A));
  dmax.poison();
  cuda::max_rows(Cuda{}, dm.data(), A, R, dmax.data(), darg.data());
  std::vector<float> rmax(static_cast<size_t>(A));
  std::vector<int64_t> rarg(static_cast<size_t>(A));
  cpu::max_rows(Cpu{}, m.data(), A, R, rmax.data(), rarg.data());
  const auto gmax = dmax.download();
  const auto garg = darg.download();
  for (int64_t a = 0; a < A; ++a) {
    INFO("row " << a);
    CHECK(garg[static_cast<size_t>(a)] == rarg[static_cast<size_t>(a)]);
    if (std::isnan(rmax[static_cast<size_t>(a)])) CHECK(std::isnan(gmax[static_cast<size_t>(a)]));
    else CHECK(gmax[static_cast<size_t>(a)] == rmax[static_cast<size_t>(a)]);
  }
  const auto g = rng.normal(static_cast<size_t>(A));
  Buf<float> dg(g), ddx(static_cast<size_t>(A * R));
  ddx.poison();
  cuda::scatter_rows_at(Cuda{}, dg.data(), darg.data(), A, R, ddx.data());
  std::vector<float> rdx(static_cast<size_t>(A * R));
  cpu::scatter_rows_at(Cpu{}, g.data(), rarg.data(), A, R, rdx.data());
  CHECK(bit_differences(ddx.download(), rdx) == "");
}

// index_select through the op layer on CUDA: the gather kernel forward, the CSR backward (repeated
// and never-selected rows) against the CPU op, fp32 and bf16.
TEST_CASE("index_select: gather_rows and its deterministic backward match the CPU", "[elementwise][reduce]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const vts::Shape shape{40, 3, 7};
  const std::vector<int64_t> rows{5, 0, 39, 5, 17, 5, 0, 22};  // 5 three times, most rows never
  const auto x = round_bf16(rng.normal(static_cast<size_t>(shape.numel())));
  const auto r = round_bf16(rng.normal(rows.size() * 21));
  Tensor<float, Cpu> xc = Tensor<float, Cpu>::from_vector(x, shape);
  xc.requires_grad_();
  const auto yc = index_select(xc, rows);
  sum(mul(yc, Tensor<float, Cpu>::from_vector(r, yc.shape()))).backward();
  auto run = [&](auto tag) {
    using Tn = decltype(tag);
    using T = typename Tn::value_type;
    auto as = [](const std::vector<float>& v) { return std::vector<T>(v.begin(), v.end()); };
    Tn xg = Tn::from_vector(as(x), shape);
    xg.requires_grad_();
    const Tn yg = index_select(xg, rows);
    REQUIRE(yg.shape() == yc.shape());
    sum(mul(yg, Tn::from_vector(as(r), yg.shape()))).backward();
    std::vector<float> y, dx;
    for (T v : yg.to_vector()) y.push_back(static_cast<float>(v));
    for (T v : xg.grad().to_vector()) dx.push_back(static_cast<float>(v));
    return std::pair{y, dx};
  };
  const auto [y32, dx32] = run(Tensor<float, Cuda>());
  CHECK(y32 == yc.to_vector());  // a gather moves values: exact
  CHECK(rel_err(dx32, xc.grad().to_vector()) < kTolF32);
  const auto [y16, dx16] = run(Tensor<bf16, Cuda>());
  CHECK(y16 == yc.to_vector());  // the inputs are bf16-representable
  CHECK(rel_err(dx16, xc.grad().to_vector()) < kTolBf16);
}
