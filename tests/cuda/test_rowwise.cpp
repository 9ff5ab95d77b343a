// LayerNorm, GELU, softmax, fused cross-entropy and BCE against vts::cpu (or, for the losses,
// against the formulas of ops/softmax.hpp evaluated on the CPU) at ViT shapes and odd ones.
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "../common/exact_gelu.hpp"
#include "cuda_test_util.hpp"
#include "vts/backend/cpu/activation.hpp"
#include "vts/backend/cpu/rowwise.hpp"
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/graph.hpp"
#include "vts/backend/cuda/layer_norm.hpp"
#include "vts/backend/cuda/softmax.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {
struct RowsCase {
  int64_t rows, n;
};
// ViT-B rows (4·197 and 3·50 tokens of width 768), ViT-S width 384, and the generic path: a width
// that is not a multiple of the 16-byte pack, and one wider than the register-resident path.
const RowsCase kLnCases[] = {{4 * 197, 768}, {3 * 50, 768}, {33, 384}, {17, 100}, {5, 2050}, {9, 4096}, {1, 64}};
// The scale the rounding of a row's mean is relative to: the row's mean |x| (a sum's rounding grows
// with the sizes of its terms, not with the sum), as a norm over the rows. A row of 64 draws can
// have a mean near 0 by chance (of N(0.5, 2²) draws, within 0.02 of 0 in about 3 % of seeds; seed
// 10997200434460103994 gave 3.3e-4, off by 1.3e-8), and its relative error then measures the draw.
double row_mean_scale(const std::vector<float>& x, int64_t rows, int64_t n) {
  double squares = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::abs(double(x[static_cast<size_t>(r * n + i)]));
    squares += (sum / double(n)) * (sum / double(n));
  }
  return std::sqrt(squares);
}
// The bound on that measure. Not kTolF32: against mean |x| rather than the mean, 1e-5 would be up to
// 50x looser than the relative bound it replaced (the bf16 rows of 4096 values have means near 0.03
// against a mean |x| of 1.6). Measured on vts-emu, six seeds: at most 5.4e-8 in fp32, 1.4e-9 for
// bf16 inputs; 2e-7 is at least as strict as the old bound wherever the old one was meaningful.
constexpr double kTolRowMean = 2e-7;
}  // namespace

TEST_CASE("layer_norm fp32 forward and backward", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : kLnCases) {
    INFO("rows " << c.rows << " n " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n);
    auto x = rng.normal(total, 2.0f);
    for (size_t i = 0; i < total; ++i) x[i] += 0.5f;  // a non-zero mean
    const auto w = rng.normal(n), b = rng.normal(n), g = rng.normal(total);
    const float eps = 1e-6f;
    std::vector<float> y(total), mu(static_cast<size_t>(c.rows)), rs(static_cast<size_t>(c.rows));
    cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, eps);
    Buf<float> dx(x), dw(w), db(b), dy(total), dmu(mu.size()), drs(rs.size());
    dy.poison();
    dmu.poison();
    drs.poison();
    cuda::layer_norm_rows(Cuda{}, dx.data(), dw.data(), db.data(), dy.data(), dmu.data(), drs.data(), c.rows, c.n,
                          eps);
    CHECK(rel_err(dy.download(), y) < kTolF32);
    CHECK(rel_err(dmu.download(), mu, row_mean_scale(x, c.rows, c.n)) < kTolRowMean);
    CHECK(rel_err(drs.download(), rs) < kTolF32);

    std::vector<float> gx(total), gw(n), gb(n);
    cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), gx.data(), gw.data(),
                                  gb.data(), c.rows, c.n);
    Buf<float> dg(g), dgx(total), dgw(n), dgb(n);
    dgx.poison();
    dgw.poison();
    dgb.poison();
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), dgx.data(),
                                   dgw.data(), dgb.data(), c.rows, c.n);
    CHECK(rel_err(dgx.download(), gx) < kTolF32);
    CHECK(rel_err(dgw.download(), gw) < kTolF32);
    CHECK(rel_err(dgb.download(), gb) < kTolF32);
    // dx may be skipped (input needs no gradient).
    dgw.poison();
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), nullptr,
                                   dgw.data(), dgb.data(), c.rows, c.n);
    CHECK(rel_err(dgw.download(), gw) < kTolF32);
  }
}

TEST_CASE("layer_norm bf16 forward and backward", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : kLnCases) {
    INFO("rows " << c.rows << " n " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n);
    const auto x = round_bf16(rng.normal(total, 2.0f)), w = round_bf16(rng.normal(n)), b = round_bf16(rng.normal(n)),
               g = round_bf16(rng.normal(total));
    const float eps = 1e-6f;
    std::vector<float> y(total), mu(static_cast<size_t>(c.rows)), rs(static_cast<size_t>(c.rows));
    cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, eps);
    auto dx = bf16_buf(x), dw = bf16_buf(w), db = bf16_buf(b);
    Buf<bf16> dy(total);
    Buf<float> dmu(mu.size()), drs(rs.size());
    dy.poison();
    dmu.poison();
    drs.poison();
    cuda::layer_norm_rows(Cuda{}, dx.data(), dw.data(), db.data(), dy.data(), dmu.data(), drs.data(), c.rows, c.n,
                          eps);
    CHECK(rel_err(dy.download(), y) < kTolBf16);
    CHECK(rel_err(dmu.download(), mu, row_mean_scale(x, c.rows, c.n)) < kTolRowMean);  // of bf16 inputs, in fp32
    CHECK(rel_err(drs.download(), rs) < kTolF32);
    std::vector<float> gx(total), gw(n), gb(n);
    cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), gx.data(), gw.data(),
                                  gb.data(), c.rows, c.n);
    auto dg = bf16_buf(g);
    Buf<bf16> dgx(total);
    Buf<float> dgw(n), dgb(n);
    dgx.poison();
    dgw.poison();
    dgb.poison();
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), dgx.data(),
                                   dgw.data(), dgb.data(), c.rows, c.n);
    CHECK(rel_err(dgx.download(), gx) < kTolBf16);
    CHECK(rel_err(dgw.download(), gw) < 1e-4);  // fp32 outputs from bf16 inputs
    CHECK(rel_err(dgb.download(), gb) < 1e-4);
    // bf16 parameter gradients: the fp32 sums above, each rounded once (dx unchanged).
    Buf<bf16> dgx16(total), dgw16(n), dgb16(n);
    dgx16.poison();
    dgw16.poison();
    dgb16.poison();
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), dgx16.data(),
                                   dgw16.data(), dgb16.data(), c.rows, c.n);
    const auto gx16 = dgx16.download(), gx32 = dgx.download(), gw16 = dgw16.download(), gb16 = dgb16.download();
    const auto gw32 = dgw.download(), gb32 = dgb.download();
    for (size_t i = 0; i < total; ++i) REQUIRE(gx16[i].bits == gx32[i].bits);
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(gw16[i].bits == bf16(gw32[i]).bits);
      REQUIRE(gb16[i].bits == bf16(gb32[i]).bits);
    }
  }
}

// The launch shapes the kernel benchmark times against the library's default must compute the
// same thing: dx row by row exactly as the default does, dw/db (summed in another grouping) within
// the fp32 tolerance of the CPU — and, with rows prefetched or the sums kept in shared memory at the
// default's shape, the default's dw/db bits. 3000 × 128 gives each warp several rows on a 132-SM device (the prefetch's pipeline).
// Values outside the compiled set are refused before any launch.
TEST_CASE("layer_norm backward: every launch shape gives the default's answer", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const cuda::LayerNormBackwardLaunch launches[] = {
      {16, 1, 16}, {16, 1, 32}, {8, 1, 16}, {8, 2, 8}, {8, 2, 32}, {4, 4, 16}, {4, 4, 32}, {4, 32, 8},
      {8, 2, 16, true}, {8, 1, 16, true}, {4, 4, 16, true},
      // The two-level fold: the same launch's bits without it (where the partial rows are too many
      // for the one-level fold; 4 × 197 rows of 768 on 132 SMs: 99 blocks; 200 rows: 25 blocks, so
      // with 32 classes 7 of them have no blocks; 3000 rows of 128 at 16 blocks an SM: 375 blocks,
      // 23–24 in each of 16 classes).
      {8, 2, 16, false, true}, {8, 2, 8, false, true}, {8, 2, 32, false, true}, {8, 16, 16, false, true},
      {8, 2, 16, true, true},
      // The sums kept in shared memory: at the default's shape its dw/db bits; with more blocks an
      // SM (what it is for) another grouping; with the fold, that launch's bits without the fold.
      {8, 2, 16, false, false, true}, {8, 3, 16, false, false, true}, {8, 4, 16, false, false, true},
      {8, 3, 16, false, true, true}};
  for (const RowsCase c : {RowsCase{4 * 197, 768}, RowsCase{200, 768}, RowsCase{33, 384}, RowsCase{1, 64},
                           RowsCase{3000, 128}}) {
    INFO("rows " << c.rows << " n " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n);
    const auto x = round_bf16(rng.normal(total, 2.0f)), w = round_bf16(rng.normal(n)), b = round_bf16(rng.normal(n)),
               g = round_bf16(rng.normal(total));
    std::vector<float> y(total), mu(static_cast<size_t>(c.rows)), rs(static_cast<size_t>(c.rows)), gx(total), gw(n),
        gb(n);
    cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, 1e-6f);
    cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), gx.data(), gw.data(),
                                  gb.data(), c.rows, c.n);
    Buf<float> fx(x), fw(w), fg(g), dmu(mu), drs(rs), fgx(total), fgw(n), fgb(n);
    auto bx = bf16_buf(x), bw = bf16_buf(w), bg = bf16_buf(g);
    Buf<bf16> bgx(total);
    cuda::layer_norm_rows_backward(Cuda{}, fx.data(), fw.data(), dmu.data(), drs.data(), fg.data(), fgx.data(),
                                   fgw.data(), fgb.data(), c.rows, c.n);
    const auto default_f32_dw = fgw.download(), default_f32_db = fgb.download();
    cuda::layer_norm_rows_backward(Cuda{}, bx.data(), bw.data(), dmu.data(), drs.data(), bg.data(), bgx.data(),
                                   fgw.data(), fgb.data(), c.rows, c.n);
    const auto default_f32_dx = fgx.download();
    const auto default_bf16_dx = bgx.download();
    for (const auto& l : launches) {
      INFO("warps " << l.warps_per_block << " blocks/SM " << l.blocks_per_sm << " groups " << l.final_groups
                    << " prefetch " << l.prefetch_rows << " fold by class " << l.fold_by_class << " shared sums "
                    << l.shared_sums);
      const bool default_shape = l.warps_per_block == 8 && l.blocks_per_sm == 2 && l.final_groups == 16;
      std::vector<float> unfolded_f32_dw, unfolded_f32_db, unfolded_bf16_dw, unfolded_bf16_db;
      if (l.fold_by_class) {  // the same launch adding the partial rows in the final kernel
        cuda::LayerNormBackwardLaunch unfolded = l;
        unfolded.fold_by_class = false;
        cuda::layer_norm_rows_backward(Cuda{}, fx.data(), fw.data(), dmu.data(), drs.data(), fg.data(), fgx.data(),
                                       fgw.data(), fgb.data(), c.rows, c.n, unfolded);
        unfolded_f32_dw = fgw.download();
        unfolded_f32_db = fgb.download();
        cuda::layer_norm_rows_backward(Cuda{}, bx.data(), bw.data(), dmu.data(), drs.data(), bg.data(), bgx.data(),
                                       fgw.data(), fgb.data(), c.rows, c.n, unfolded);
        unfolded_bf16_dw = fgw.download();
        unfolded_bf16_db = fgb.download();
      }
      fgx.poison();
      fgw.poison();
      fgb.poison();
      cuda::layer_norm_rows_backward(Cuda{}, fx.data(), fw.data(), dmu.data(), drs.data(), fg.data(), fgx.data(),
                                     fgw.data(), fgb.data(), c.rows, c.n, l);
      CHECK(bit_differences(fgx.download(), default_f32_dx) == "");
      CHECK(rel_err(fgw.download(), gw) < kTolF32);
      CHECK(rel_err(fgb.download(), gb) < kTolF32);
      if (default_shape) {
        CHECK(bit_differences(fgw.download(), default_f32_dw) == "");
        CHECK(bit_differences(fgb.download(), default_f32_db) == "");
      }
      if (l.fold_by_class) {
        CHECK(bit_differences(fgw.download(), unfolded_f32_dw) == "");
        CHECK(bit_differences(fgb.download(), unfolded_f32_db) == "");
      }
      bgx.poison();
      fgw.poison();
      fgb.poison();
      cuda::layer_norm_rows_backward(Cuda{}, bx.data(), bw.data(), dmu.data(), drs.data(), bg.data(), bgx.data(),
                                     fgw.data(), fgb.data(), c.rows, c.n, l);
      CHECK(bit_differences(bgx.download(), default_bf16_dx) == "");
      CHECK(rel_err(fgw.download(), gw) < 1e-4);
      CHECK(rel_err(fgb.download(), gb) < 1e-4);
      if (l.fold_by_class) {
        CHECK(bit_differences(fgw.download(), unfolded_bf16_dw) == "");
        CHECK(bit_differences(fgb.download(), unfolded_bf16_db) == "");
      }
    }
  }
  Buf<float> one(64), out(64), stat(1);
  for (const cuda::LayerNormBackwardLaunch bad : {cuda::LayerNormBackwardLaunch{12, 2, 16},
                                                  cuda::LayerNormBackwardLaunch{8, 0, 16},
                                                  cuda::LayerNormBackwardLaunch{8, 2, 4},
                                                  cuda::LayerNormBackwardLaunch{4, 4, 16, false, true},
                                                  cuda::LayerNormBackwardLaunch{4, 4, 16, false, false, true},
                                                  cuda::LayerNormBackwardLaunch{8, 2, 16, true, false, true}}) {
    CHECK_THROWS_WITH(cuda::layer_norm_rows_backward(Cuda{}, one.data(), one.data(), stat.data(), stat.data(),
                                                     one.data(), out.data(), out.data(), out.data(), 1, 64, bad),
                      Catch::Matchers::Contains("layer_norm_backward") && Catch::Matchers::Contains("must be"));
  }
}

// The forward with two rows a warp (the benchmark's alternative) runs the same arithmetic as the
// default: the same bits out. Odd row counts leave a warp with one row of its two.
TEST_CASE("layer_norm forward: two rows a warp gives the default's answer", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const cuda::LayerNormForwardLaunch two_rows{.rows_per_warp = 2};
  for (const RowsCase c : {RowsCase{4 * 197, 768}, RowsCase{33, 384}, RowsCase{5, 1024}, RowsCase{3, 100},
                           RowsCase{13, 768}}) {
    INFO("rows " << c.rows << " n " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n), rows = size_t(c.rows);
    const auto x = round_bf16(rng.normal(total, 2.0f)), w = round_bf16(rng.normal(n)), b = round_bf16(rng.normal(n));
    std::vector<float> y(total), mu(rows), rs(rows);
    cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, 1e-6f);
    Buf<float> fx(x), fw(w), fb(b), fy(total), dmu(rows), drs(rows);
    auto bx = bf16_buf(x), bw = bf16_buf(w), bb = bf16_buf(b);
    Buf<bf16> by(total);
    cuda::layer_norm_rows(Cuda{}, fx.data(), fw.data(), fb.data(), fy.data(), dmu.data(), drs.data(), c.rows, c.n,
                          1e-6f);
    const auto default_f32 = fy.download(), default_mu = dmu.download(), default_rs = drs.download();
    CHECK(rel_err(default_f32, y) < kTolF32);
    fy.poison();
    dmu.poison();
    drs.poison();
    cuda::layer_norm_rows(Cuda{}, fx.data(), fw.data(), fb.data(), fy.data(), dmu.data(), drs.data(), c.rows, c.n,
                          1e-6f, two_rows);
    CHECK(bit_differences(fy.download(), default_f32) == "");
    CHECK(bit_differences(dmu.download(), default_mu) == "");
    CHECK(bit_differences(drs.download(), default_rs) == "");
    cuda::layer_norm_rows(Cuda{}, bx.data(), bw.data(), bb.data(), by.data(), dmu.data(), drs.data(), c.rows, c.n,
                          1e-6f);
    const auto default_bf16 = to_float(by.download());
    CHECK(rel_err(default_bf16, y) < kTolBf16);
    by.poison();
    cuda::layer_norm_rows(Cuda{}, bx.data(), bw.data(), bb.data(), by.data(), dmu.data(), drs.data(), c.rows, c.n,
                          1e-6f, two_rows);
    CHECK(bit_differences(to_float(by.download()), default_bf16) == "");
  }
}

namespace {
// layer_norm_rows_backward_add against the plain backward followed by the sum, bit for bit: into a
// fresh buffer and in place (dx_add == dx). T: float, or bf16 (with bf16 dw, db).
template <class T>
void check_backward_add(Rng& rng, const RowsCase& c) {
  const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n);
  auto as_t = [](const std::vector<float>& v) {
    if constexpr (std::is_same_v<T, bf16>) return to_bf16(v);
    else return v;
  };
  const Buf<T> x(as_t(rng.normal(total, 2.0f))), w(as_t(rng.normal(n))), b(as_t(rng.normal(n))),
      g(as_t(rng.normal(total)));
  const auto waiting_host = as_t(rng.normal(total));
  Buf<T> y(total);
  Buf<float> mu(static_cast<size_t>(c.rows)), rs(static_cast<size_t>(c.rows));
  cuda::layer_norm_rows(Cuda{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, 1e-6f);
  Buf<T> dx(total), dw(n), db(n);
  cuda::layer_norm_rows_backward(Cuda{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), dx.data(), dw.data(),
                                 db.data(), c.rows, c.n);
  const auto dx_host = dx.download();
  std::vector<T> want(total);
  for (size_t i = 0; i < total; ++i)  // the engine's sum: pending + dx, rounded to T
    want[i] = T(static_cast<float>(waiting_host[i]) + static_cast<float>(dx_host[i]));
  const Buf<T> waiting(waiting_host);
  Buf<T> out(total), dw2(n), db2(n);
  out.poison();
  dw2.poison();
  db2.poison();
  cuda::layer_norm_rows_backward_add(Cuda{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), waiting.data(),
                                     out.data(), dw2.data(), db2.data(), c.rows, c.n);
  CHECK(bit_differences(out.download(), want) == "");
  CHECK(bit_differences(dw2.download(), dw.download()) == "");
  CHECK(bit_differences(db2.download(), db.download()) == "");
  Buf<T> in_place(waiting_host);
  cuda::layer_norm_rows_backward_add(Cuda{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), in_place.data(),
                                     in_place.data(), nullptr, nullptr, c.rows, c.n);
  CHECK(bit_differences(in_place.download(), want) == "");
}
}  // namespace

TEST_CASE("layer_norm backward adding a waiting gradient equals the backward then the sum", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : kLnCases) {
    INFO("rows " << c.rows << " n " << c.n);
    check_backward_add<float>(rng, c);
    check_backward_add<bf16>(rng, c);
  }
  Buf<float> one(4);
  CHECK_THROWS_AS(cuda::layer_norm_rows_backward_add(Cuda{}, one.data(), one.data(), one.data(), one.data(),
                                                     one.data(), one.data(), nullptr, nullptr, nullptr, 1, 4),
                  vts::Error);
}

TEST_CASE("layer_norm with fused residual add", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : {RowsCase{4 * 197, 768}, RowsCase{7, 100}}) {
    INFO("rows " << c.rows << " n " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n), n = static_cast<size_t>(c.n);
    const auto x = rng.normal(total), r = rng.normal(total), w = rng.normal(n), b = rng.normal(n);
    std::vector<float> s(total);
    for (size_t i = 0; i < total; ++i) s[i] = x[i] + r[i];
    std::vector<float> y(total), mu(static_cast<size_t>(c.rows)), rs(static_cast<size_t>(c.rows));
    cpu::layer_norm_rows(Cpu{}, s.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), c.rows, c.n, 1e-5f);
    Buf<float> dx(x), dr(r), dw(w), db(b), dsum(total), dy(total), dmu(mu.size()), drs(rs.size());
    dsum.poison();
    dy.poison();
    cuda::layer_norm_residual_rows(Cuda{}, dx.data(), dr.data(), dsum.data(), dw.data(), db.data(), dy.data(),
                                   dmu.data(), drs.data(), c.rows, c.n, 1e-5f);
    CHECK(rel_err(dsum.download(), s) < kTolF32);
    CHECK(rel_err(dy.download(), y) < kTolF32);
    CHECK(rel_err(drs.download(), rs) < kTolF32);
  }
}

// The process-wide launches (what the ops' calls take, for timing a candidate in a whole step):
// the overloads without a launch argument then give that launch's bits (the residual forward's
// two rows a warp included), a refused launch changes nothing, and the defaults return.
// fp32, where another grouping of the dw/db sums shows in the bits (bf16 rounding hides it).
TEST_CASE("layer_norm: the process-wide launches reach the calls without a launch argument", "[rowwise][layer_norm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  struct Restore {
    ~Restore() {
      cuda::set_layer_norm_forward_launch({});
      cuda::set_layer_norm_backward_launch({});
    }
  } restore;
  // 3 row groups of 8 an SM (3,168 rows on 132 SMs): the candidate's 3 blocks an SM group the dw/db
  // sums otherwise than the default's 2 — its bits differ, which shows which launch ran.
  const int64_t rows = 24 * int64_t(cuda::device_info().sm_count), cols = 768;
  const size_t total = size_t(rows * cols), n = size_t(cols);
  const auto x = rng.normal(total, 2.0f), r = rng.normal(total), w = rng.normal(n), b = rng.normal(n),
             g = rng.normal(total);
  Buf<float> dx(x), dr(r), dw(w), db(b), dg(g), dy(total), dsum(total), gx(total), gw(n), gb(n);
  Buf<float> dmu(static_cast<size_t>(rows)), drs(static_cast<size_t>(rows));
  const cuda::LayerNormBackwardLaunch candidate{8, 3, 16, false, true, true};
  auto results = [&] { return std::vector<std::vector<float>>{gx.download(), gw.download(), gb.download()}; };
  auto poison_grads = [&] {
    gx.poison();
    gw.poison();
    gb.poison();
  };
  auto backward = [&] {
    poison_grads();
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), gx.data(),
                                   gw.data(), gb.data(), rows, cols);
    return results();
  };
  auto backward_add = [&] {  // g itself as the gradient already waiting for x
    poison_grads();
    cuda::layer_norm_rows_backward_add(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), dg.data(),
                                       gx.data(), gw.data(), gb.data(), rows, cols);
    return results();
  };
  // The residual forward (its own statistics' buffers: dmu, drs stay x's for the backward).
  Buf<float> sum_mu(static_cast<size_t>(rows)), sum_rs(static_cast<size_t>(rows));
  auto residual = [&] {
    dsum.poison();
    dy.poison();
    cuda::layer_norm_residual_rows(Cuda{}, dx.data(), dr.data(), dsum.data(), dw.data(), db.data(), dy.data(),
                                   sum_mu.data(), sum_rs.data(), rows, cols, 1e-6f);
    return std::vector<std::vector<float>>{dsum.download(), dy.download(), sum_mu.download(), sum_rs.download()};
  };
  const auto default_residual = residual();
  cuda::layer_norm_rows(Cuda{}, dx.data(), dw.data(), db.data(), dy.data(), dmu.data(), drs.data(), rows, cols, 1e-6f);
  const auto default_y = dy.download();
  const auto default_bwd = backward(), default_add = backward_add();
  poison_grads();
  cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), gx.data(),
                                 gw.data(), gb.data(), rows, cols, candidate);
  const auto cand = results();
  REQUIRE(bit_differences(cand[1], default_bwd[1]) != "");

  cuda::set_layer_norm_forward_launch({.rows_per_warp = 2});
  cuda::set_layer_norm_backward_launch(candidate);
  CHECK(cuda::layer_norm_forward_launch().rows_per_warp == 2);
  CHECK(cuda::layer_norm_backward_launch().shared_sums);
  dy.poison();
  cuda::layer_norm_rows(Cuda{}, dx.data(), dw.data(), db.data(), dy.data(), dmu.data(), drs.data(), rows, cols, 1e-6f);
  CHECK(bit_differences(dy.download(), default_y) == "");
  const auto set_bwd = backward();
  for (size_t i = 0; i < 3; ++i) CHECK(bit_differences(set_bwd[i], cand[i]) == "");
  const auto set_add = backward_add();
  CHECK(bit_differences(set_add[0], default_add[0]) == "");  // dx: the same in every launch shape
  CHECK(bit_differences(set_add[1], cand[1]) == "");
  CHECK(bit_differences(set_add[2], cand[2]) == "");
  const auto set_residual = residual();
  for (size_t i = 0; i < 4; ++i) CHECK(bit_differences(set_residual[i], default_residual[i]) == "");
  std::vector<float> s(total), y(total), mu(static_cast<size_t>(rows)), rs(static_cast<size_t>(rows));
  for (size_t i = 0; i < total; ++i) s[i] = x[i] + r[i];
  cpu::layer_norm_rows(Cpu{}, s.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), rows, cols, 1e-6f);
  CHECK(rel_err(set_residual[1], y) < kTolF32);

  CHECK_THROWS_WITH(cuda::set_layer_norm_backward_launch({8, 2, 16, true, false, true}),
                    Catch::Matchers::Contains("shared_sums"));
  CHECK_THROWS_WITH(cuda::set_layer_norm_forward_launch({.rows_per_warp = 3}),
                    Catch::Matchers::Contains("rows_per_warp"));
  CHECK(cuda::layer_norm_backward_launch().blocks_per_sm == 3);  // unchanged by the refused ones
  CHECK(cuda::layer_norm_forward_launch().rows_per_warp == 2);
  cuda::set_layer_norm_forward_launch({});
  cuda::set_layer_norm_backward_launch({});
  const auto back_bwd = backward();
  for (size_t i = 0; i < 3; ++i) CHECK(bit_differences(back_bwd[i], default_bwd[i]) == "");
}

// A family (and so a process) of its own: the process's first LayerNorm backward is captured, so the
// fold's counters are allocated inside the capture, where their zeroing is recorded, not run. An
// eager backward before any replay must still write dw and db (vts-emu fills fresh allocations with
// 0xff bytes; a device may leave anything there), and the replay too.
TEST_CASE("layer_norm backward: fold counters first allocated inside a capture", "[layer_norm_first_capture]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const int64_t rows = 33, cols = 384;  // 5 blocks' partial rows: the default adds them in the backward's fold
  const size_t total = size_t(rows * cols), n = size_t(cols);
  const auto x = rng.normal(total, 2.0f), w = rng.normal(n), b = rng.normal(n), g = rng.normal(total);
  std::vector<float> y(total), mu(static_cast<size_t>(rows)), rs(static_cast<size_t>(rows)), gx(total), gw(n), gb(n);
  cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), rows, cols, 1e-6f);
  cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), gx.data(), gw.data(),
                                gb.data(), rows, cols);
  Buf<float> dx(x), dw(w), dmu(mu), drs(rs), dg(g), dgx(total), dgw(n), dgb(n);
  auto backward = [&] {
    cuda::layer_norm_rows_backward(Cuda{}, dx.data(), dw.data(), dmu.data(), drs.data(), dg.data(), dgx.data(),
                                   dgw.data(), dgb.data(), rows, cols);
  };
  auto check = [&](const char* what) {
    INFO(what);
    CHECK(rel_err(dgx.download(), gx) < kTolF32);
    CHECK(rel_err(dgw.download(), gw) < kTolF32);
    CHECK(rel_err(dgb.download(), gb) < kTolF32);
  };
  auto poison = [&] {
    dgx.poison();
    dgw.poison();
    dgb.poison();
  };
  cuda::Graph graph;
  graph.capture(backward);
  poison();
  backward();
  check("eager, before any replay");
  poison();
  graph.replay();
  check("replayed");
  poison();
  backward();
  check("eager, after the replay");
}

TEST_CASE("gelu forward and backward, fp32 and bf16", "[rowwise][gelu]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (size_t n : {size_t(788) * 3072, size_t(1), size_t(1001)}) {
    INFO("n " << n);
    const auto x = rng.normal(n + 1, 2.0f), g = rng.normal(n + 1);
    for (size_t off : {size_t(0), size_t(1)}) {  // off = 1: not 16-byte aligned (scalar path)
      INFO("offset " << off);
      std::vector<float> y(n), gx(n);
      cpu::gelu_forward(Cpu{}, x.data() + off, y.data(), static_cast<int64_t>(n));
      cpu::gelu_backward(Cpu{}, x.data() + off, g.data() + off, gx.data(), static_cast<int64_t>(n));
      Buf<float> dx(x), dg(g), dy(n), dgx(n);
      dy.poison();
      dgx.poison();
      cuda::gelu_forward(Cuda{}, dx.data() + off, dy.data(), static_cast<int64_t>(n));
      cuda::gelu_backward(Cuda{}, dx.data() + off, dg.data() + off, dgx.data(), static_cast<int64_t>(n));
      // For x < 0, Φ(x) = ½(1 + erf(x/√2)) cancels: each device's erf is within a few ulp of −1, so
      // y and dx near 0 carry an absolute error of ~|x|·2⁻²⁴ that belongs to the erf form, not to
      // the kernel (PyTorch's has it too). Norm-wise over many elements that is far below 1e-5; for
      // n = 1 it decided the outcome (one run in ten failed, 1e-4 at x ≈ −4). Hence a floor of 1
      // under the norm: the large case is unchanged (its norm is ~10³), and a small one must still
      // be within 1e-5 absolute, which a wrong or unwritten element is not. The same for bf16 below
      // (one run in thirty failed there, by 2–4 %, before the floor).
      CHECK(rel_err(dy.download(), y, 1.0) < kTolF32);
      CHECK(rel_err(dgx.download(), gx, 1.0) < kTolF32);

      const auto xb = round_bf16(x), gb = round_bf16(g);
      cpu::gelu_forward(Cpu{}, xb.data() + off, y.data(), static_cast<int64_t>(n));
      cpu::gelu_backward(Cpu{}, xb.data() + off, gb.data() + off, gx.data(), static_cast<int64_t>(n));
      auto bx = bf16_buf(xb), bg = bf16_buf(gb);
      Buf<bf16> by(n), bgx(n);
      by.poison();
      bgx.poison();
      cuda::gelu_forward(Cuda{}, bx.data() + off, by.data(), static_cast<int64_t>(n));
      cuda::gelu_backward(Cuda{}, bx.data() + off, bg.data() + off, bgx.data(), static_cast<int64_t>(n));
      CHECK(rel_err(by.download(), y, 1.0) < kTolBf16);
      CHECK(rel_err(bgx.download(), gx, 1.0) < kTolBf16);

      // The benchmark's alternative for bf16: Φ by erff, the default until 2026-12-04.
      const cuda::GeluLaunch erf_form{.erf_form = true};
      by.poison();
      bgx.poison();
      cuda::gelu_forward(Cuda{}, bx.data() + off, by.data(), static_cast<int64_t>(n), erf_form);
      cuda::gelu_backward(Cuda{}, bx.data() + off, bg.data() + off, bgx.data(), static_cast<int64_t>(n), erf_form);
      CHECK(rel_err(by.download(), y, 1.0) < kTolBf16);
      CHECK(rel_err(bgx.download(), gx, 1.0) < kTolBf16);
    }
  }
}

// The bf16 GELU (the exp form) on the device at every finite bf16 input, against the exact
// function rounded to bf16. On the host (tests/core/test_gelu_exp_form.cpp) every one is correctly
// rounded; here the MUFU reciprocal and exp2 add 1–2 ulp in fp32, which a host simulation of their
// worst case showed to change the bf16 result only for inputs below 2.4e-38 (outputs in the
// denormal range, by one bf16 ulp). Above that, at most a handful of misses are allowed, each of one
// ulp. (The first H200 run, 2026-12-04, found 34 outputs at x ≈ −13.1 … −13.8 flushed to 0 by exp2:
// core/gelu_exp_form.hpp's exp2_deep keeps them, and the host now flushes as the device does.)
TEST_CASE("gelu exp form (bf16): every bf16 input against the exact GELU and derivative", "[rowwise][gelu]") {
  const auto xs = vts_test_common::finite_bf16_values();
  const size_t n = xs.size();
  auto bx = bf16_buf(xs), ones = bf16_buf(std::vector<float>(n, 1.0f));
  Buf<bf16> by(n), bgx(n);
  by.poison();
  bgx.poison();
  cuda::gelu_forward(Cuda{}, bx.data(), by.data(), static_cast<int64_t>(n));
  cuda::gelu_backward(Cuda{}, bx.data(), ones.data(), bgx.data(), static_cast<int64_t>(n));
  const auto y = to_float(by.download()), gx = to_float(bgx.download());
  auto ulps_apart = [](float a, float b) {  // bf16 values of one sign or zero
    return std::abs(int(bf16(a).bits & 0x7fff) - int(bf16(b).bits & 0x7fff));
  };
  int misses = 0, worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const float want = static_cast<float>(bf16(static_cast<float>(vts_test_common::exact_gelu(xs[i]))));
    const float want_grad = static_cast<float>(bf16(static_cast<float>(vts_test_common::exact_gelu_grad(xs[i]))));
    for (const auto& [got, expect] : {std::pair{y[i], want}, std::pair{gx[i], want_grad}}) {
      if (got == expect) continue;
      INFO("x = " << xs[i] << ": got " << got << ", want " << expect);
      const bool same_sign = std::signbit(got) == std::signbit(expect) || expect == 0.0f;
      const int apart = same_sign ? ulps_apart(got, expect) : 1 << 16;
      CHECK(apart <= 1);
      worst = std::max(worst, apart);
      if (std::fabs(xs[i]) >= 2.4e-38f) ++misses;
    }
  }
  INFO("misses outside the denormal outputs: " << misses << "; worst: " << worst << " ulp");
  CHECK(misses <= 8);
}

TEST_CASE("softmax and log-softmax rows, forward and backward", "[rowwise][softmax]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : {RowsCase{32 * 12 * 197 / 8, 197}, RowsCase{12 * 50, 50}, RowsCase{64, 1000}, RowsCase{3, 1}}) {
    for (bool log_y : {false, true}) {
      INFO("rows " << c.rows << " n " << c.n << " log " << log_y);
      const size_t total = static_cast<size_t>(c.rows * c.n);
      const auto x = rng.normal(total, 3.0f), g = rng.normal(total);
      std::vector<float> y(total), gx(total);
      cpu::softmax_rows(Cpu{}, x.data(), y.data(), c.rows, c.n, log_y);
      cpu::softmax_rows_backward(Cpu{}, y.data(), g.data(), gx.data(), c.rows, c.n, log_y);
      Buf<float> dx(x), dg(g), dy(total), dgx(total);
      dy.poison();
      dgx.poison();
      cuda::softmax_rows(Cuda{}, dx.data(), dy.data(), c.rows, c.n, log_y);
      CHECK(rel_err(dy.download(), y) < kTolF32);
      Buf<float> yref(y);  // backward from the reference output isolates the backward kernel
      cuda::softmax_rows_backward(Cuda{}, yref.data(), dg.data(), dgx.data(), c.rows, c.n, log_y);
      CHECK(rel_err(dgx.download(), gx) < kTolF32);

      const auto xb = round_bf16(x);
      cpu::softmax_rows(Cpu{}, xb.data(), y.data(), c.rows, c.n, log_y);
      auto bx = bf16_buf(xb);
      Buf<bf16> by(total);
      by.poison();
      cuda::softmax_rows(Cuda{}, bx.data(), by.data(), c.rows, c.n, log_y);
      CHECK(rel_err(by.download(), y) < kTolBf16);
    }
  }
}

TEST_CASE("fused cross-entropy: per-row loss and gradient", "[rowwise][loss]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : {RowsCase{64, 10}, RowsCase{256, 1000}, RowsCase{5, 100}}) {
    INFO("rows " << c.rows << " classes " << c.n);
    const size_t total = static_cast<size_t>(c.rows * c.n);
    const auto x = rng.normal(total, 4.0f);
    std::vector<int64_t> t(static_cast<size_t>(c.rows));
    for (auto& v : t) v = static_cast<int64_t>(rng.gen() % static_cast<uint64_t>(c.n));
    // Reference: log_softmax on the CPU, then the formulas of ops/softmax.hpp's cross_entropy.
    std::vector<float> lp(total);
    cpu::softmax_rows(Cpu{}, x.data(), lp.data(), c.rows, c.n, true);
    const float scale = 0.7f / static_cast<float>(c.rows);
    std::vector<float> loss(static_cast<size_t>(c.rows)), grad(total);
    for (int64_t r = 0; r < c.rows; ++r) {
      loss[static_cast<size_t>(r)] = -lp[static_cast<size_t>(r * c.n + t[static_cast<size_t>(r)])];
      for (int64_t j = 0; j < c.n; ++j) {
        const size_t i = static_cast<size_t>(r * c.n + j);
        grad[i] = scale * (std::exp(lp[i]) - (j == t[static_cast<size_t>(r)] ? 1.0f : 0.0f));
      }
    }
    Buf<float> dx(x), dloss(loss.size()), dgrad(total);
    Buf<int64_t> dt(t);
    dloss.poison();
    dgrad.poison();
    cuda::cross_entropy_fused(Cuda{}, dx.data(), dt.data(), c.rows, c.n, dloss.data(), dgrad.data(), scale);
    CHECK(rel_err(dloss.download(), loss) < kTolF32);
    CHECK(rel_err(dgrad.download(), grad) < kTolF32);
    dloss.poison();
    cuda::cross_entropy_fused(Cuda{}, dx.data(), dt.data(), c.rows, c.n, dloss.data(), static_cast<float*>(nullptr),
                              scale);
    CHECK(rel_err(dloss.download(), loss) < kTolF32);
  }
}

TEST_CASE("binary cross-entropy forward and backward", "[rowwise][loss]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const size_t n = 64 * 48;
  auto p = rng.uniform(n, 0.001f, 0.999f);
  p[0] = 0.0f;  // log clamps at −100
  p[1] = 1.0f;
  const auto t = rng.uniform(n, 0.0f, 1.0f);
  std::vector<float> loss(n), dp(n);
  const float upstream = 1.3f, scale = 1.0f / static_cast<float>(n);
  for (size_t i = 0; i < n; ++i) {
    const float lp = std::max(std::log(p[i]), -100.0f), l1p = std::max(std::log(1.0f - p[i]), -100.0f);
    loss[i] = -(t[i] * lp + (1.0f - t[i]) * l1p);
    dp[i] = upstream * scale * (p[i] - t[i]) / std::max((1.0f - p[i]) * p[i], 1e-12f);
  }
  Buf<float> dpb(p), dtb(t), dl(n), ddp(n), dup(std::vector<float>{upstream});
  dl.poison();
  ddp.poison();
  cuda::bce_forward(Cuda{}, dpb.data(), dtb.data(), dl.data(), static_cast<int64_t>(n));
  cuda::bce_backward(Cuda{}, dpb.data(), dtb.data(), dup.data(), scale, ddp.data(), static_cast<int64_t>(n));
  CHECK(rel_err(dl.download(), loss) < kTolF32);
  CHECK(rel_err(ddp.download(), dp) < kTolF32);
}
