// Dropout masks (bit-identical to the CPU's Philox stream), GELU with dropout fused into its pass
// and the residual add after a dropout (both bit-identical to the separate ops), and fused
// optimizer updates (the same update functors as
// the CPU loop).
#include <cstring>
#include <utility>

#include "cuda_test_util.hpp"
#include "vts/backend/cpu/dropout.hpp"
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/dropout.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/dropout.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/backend/cuda/optim.hpp"
#include "vts/core/rng.hpp"
#include "vts/optim/sgd.hpp"
#include "vts/optim/update.hpp"

using namespace vts;
using namespace vts::cuda::test;

TEST_CASE("dropout masks match the CPU bit for bit", "[dropout]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(1001), int64_t(32) * 197 * 768}) {
    for (double p : {0.1, 0.5}) {
      const uint64_t key = rng.gen(), first = rng.gen() >> 8;  // any stream position
      INFO("n " << n << " p " << p << " key " << key << " first block " << first);
      const uint32_t threshold = static_cast<uint32_t>(p * 16777216.0);
      const float keep = static_cast<float>(1.0 / (1.0 - p));
      std::vector<float> ref(static_cast<size_t>(n));
      cpu::dropout_mask(Cpu{}, key, first, n, threshold, keep, ref.data());
      Buf<float> mask(static_cast<size_t>(n));
      mask.poison();
      cuda::dropout_mask(Cuda{}, key, first, n, threshold, keep, mask.data());
      const auto got = mask.download();
      REQUIRE(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);

      Buf<bf16> bmask(static_cast<size_t>(n));
      bmask.poison();
      cuda::dropout_mask(Cuda{}, key, first, n, threshold, bf16(keep), bmask.data());
      const auto bgot = bmask.download();
      for (size_t i = 0; i < bgot.size(); ++i) REQUIRE(bgot[i].bits == bf16(ref[i]).bits);

      // The fused form applies the same mask: y = x · mask.
      const auto x = rng.normal(static_cast<size_t>(n));
      Buf<float> dx(x), dy(static_cast<size_t>(n));
      dy.poison();
      cuda::dropout_apply(Cuda{}, key, first, n, threshold, keep, dx.data(), dy.data());
      const auto y = dy.download();
      for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == x[i] * ref[i]);
    }
  }
  // The op layer draws (seed, first) from a Generator: the mask of two consecutive draws differs.
  Generator gen(1234);
  const uint64_t a = gen.reserve(100), b = gen.reserve(100);
  CHECK(a != b);
}

// The kernel reads and writes a Philox block's four elements as one access when every pointer is
// aligned to four elements, one at a time otherwise: both against the CPU's mask, at starts 0, 1
// (scalar), 2 (bf16: still scalar) and 4 elements (aligned again, a shifted view), and at lengths
// that end inside a block.
TEST_CASE("dropout apply and residual add at aligned and misaligned starts match the CPU", "[dropout]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4096), int64_t(4099), int64_t(50 * 768 + 3)}) {
    for (int64_t shift : {int64_t(0), int64_t(1), int64_t(2), int64_t(4)}) {
      const double p = 0.1 + 0.3 * static_cast<double>(shift % 2);
      const uint64_t key = rng.gen(), first = rng.gen() >> 8;
      INFO("n " << n << " shift " << shift << " p " << p << " key " << key << " first block " << first);
      const uint32_t threshold = static_cast<uint32_t>(p * 16777216.0);
      const float keep = static_cast<float>(1.0 / (1.0 - p));
      std::vector<float> mask(static_cast<size_t>(n));
      cpu::dropout_mask(Cpu{}, key, first, n, threshold, keep, mask.data());
      const size_t m = static_cast<size_t>(n + shift), k = static_cast<size_t>(shift);
      const auto x = rng.normal(m), r = rng.normal(m);
      Buf<float> dx(x), dr(r), dy(m);
      dy.poison();
      cuda::dropout_apply(Cuda{}, key, first, n, threshold, keep, dx.data() + k, dy.data() + k);
      auto y = dy.download();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) REQUIRE(y[k + i] == x[k + i] * mask[i]);
      dy.poison();
      cuda::dropout_add(Cuda{}, key, first, n, threshold, keep, dx.data() + k, dr.data() + k, dy.data() + k);
      y = dy.download();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        const volatile float dropped = x[k + i] * mask[i];  // rounded, not contracted into the add
        REQUIRE(y[k + i] == r[k + i] + dropped);
      }
      // bf16: the product rounded to bf16, then the sum rounded, as the two ops store them.
      const auto xb = to_bf16(x), rb = to_bf16(r);
      Buf<bf16> bx(xb), br(rb), by(m);
      by.poison();
      cuda::dropout_apply(Cuda{}, key, first, n, threshold, keep, bx.data() + k, by.data() + k);
      auto yb = by.download();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i)
        REQUIRE(yb[k + i].bits == bf16(static_cast<float>(xb[k + i]) * mask[i]).bits);
      by.poison();
      cuda::dropout_add(Cuda{}, key, first, n, threshold, keep, bx.data() + k, br.data() + k, by.data() + k);
      yb = by.download();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        const float dropped = static_cast<float>(bf16(static_cast<float>(xb[k + i]) * mask[i]));
        REQUIRE(yb[k + i].bits == bf16(static_cast<float>(rb[k + i]) + dropped).bits);
      }
    }
  }
}

namespace {

// gelu_dropout_forward/backward against gelu + dropout_apply (and dropout_apply + gelu_backward),
// element for element, at an aligned and a misaligned (scalar-path) start; and the pair that keeps
// the mask as bits (gelu_dropout_forward_keep / backward_kept), whose bits must be the mask's.
template <class T>
void check_gelu_dropout_kernels(Rng& rng) {
  const auto to_t = [](const std::vector<float>& v) {
    if constexpr (std::is_same_v<T, bf16>) return to_bf16(v);
    else return v;
  };
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(8), int64_t(1001), int64_t(8 * 1001 + 5), int64_t(1) << 16}) {
    for (int64_t shift : {int64_t(0), int64_t(1)}) {
      const double p = n % 2 ? 0.1 : 0.5;
      const cuda::DropoutDraw d{rng.gen(), rng.gen() >> 8, static_cast<uint32_t>(p * 16777216.0),
                                static_cast<float>(T(1.0 / (1.0 - p)))};
      INFO("n " << n << " shift " << shift << " p " << p << " seed " << d.seed << " first " << d.first_block);
      const size_t m = static_cast<size_t>(n + shift);
      const Buf<T> x(to_t(rng.normal(m, 3.0))), g(to_t(rng.normal(m)));
      Buf<T> two(m), fused(m), gm(m);
      two.poison();
      fused.poison();
      cuda::gelu_forward(Cuda{}, x.data() + shift, gm.data() + shift, n);
      cuda::dropout_apply(Cuda{}, d.seed, d.first_block, n, d.threshold, d.keep_scale, gm.data() + shift,
                          two.data() + shift);
      cuda::gelu_dropout_forward(Cuda{}, x.data() + shift, fused.data() + shift, n, d);
      REQUIRE(bit_differences(fused.download(), two.download()) == "");

      two.poison();
      fused.poison();
      cuda::dropout_apply(Cuda{}, d.seed, d.first_block, n, d.threshold, d.keep_scale, g.data() + shift,
                          gm.data() + shift);
      cuda::gelu_backward(Cuda{}, x.data() + shift, gm.data() + shift, two.data() + shift, n);
      cuda::gelu_dropout_backward(Cuda{}, x.data() + shift, g.data() + shift, fused.data() + shift, n, d);
      REQUIRE(bit_differences(fused.download(), two.download()) == "");
      const auto want_dx = two.download();

      // The keeping pair. The bits, against the mask dropout_apply draws on ones: one per element,
      // zero past n in the last byte.
      const size_t keep_bytes = static_cast<size_t>((n + 3) / 4);
      Buf<uint8_t> keep(keep_bytes + 1);  // + 1: a misaligned start for the scalar path too
      Buf<T> ones(to_t(std::vector<float>(m, 1.0f))), mask(m);
      cuda::dropout_apply(Cuda{}, d.seed, d.first_block, n, d.threshold, d.keep_scale, ones.data() + shift,
                          mask.data() + shift);
      const auto mask_host = mask.download();
      cuda::gelu_forward(Cuda{}, x.data() + shift, gm.data() + shift, n);
      cuda::dropout_apply(Cuda{}, d.seed, d.first_block, n, d.threshold, d.keep_scale, gm.data() + shift,
                          two.data() + shift);
      const auto want_y = two.download();
      uint8_t* keep_at = keep.data() + shift;
      fused.poison();
      cuda::gelu_dropout_forward_keep(Cuda{}, x.data() + shift, fused.data() + shift, n, d, keep_at);
      REQUIRE(bit_differences(fused.download(), want_y) == "");
      const auto bits = keep.download();
      int64_t wrong_bits = 0;
      for (int64_t i = 0; i < 4 * static_cast<int64_t>(keep_bytes); ++i) {
        const bool bit = (bits[static_cast<size_t>(shift + i / 4)] >> (i % 4)) & 1;
        const bool kept = i < n && static_cast<float>(mask_host[static_cast<size_t>(shift + i)]) != 0.0f;
        wrong_bits += bit != kept;
      }
      CHECK(wrong_bits == 0);
      fused.poison();
      cuda::gelu_dropout_backward_kept(Cuda{}, x.data() + shift, g.data() + shift, fused.data() + shift, n, keep_at,
                                       d.keep_scale);
      REQUIRE(bit_differences(fused.download(), want_dx) == "");
    }
  }
}

// The op: gelu_dropout(x) against dropout(gelu(x)) from generators in the same state — output,
// gradient and the generator's position afterwards.
template <class T>
void check_gelu_dropout_op(Rng& rng) {
  using Tc = Tensor<T, Cuda>;
  const Shape shape{3, 7, 40};
  const auto xs = rng.normal(static_cast<size_t>(shape.numel()), 2.0), gs = rng.normal(static_cast<size_t>(shape.numel()));
  const Tc g = cast<T>(Tensor<float, Cuda>::from_vector(gs, shape));
  const uint64_t key = rng.gen();
  for (const bool training : {true, false}) {
    INFO("training " << training);
    Generator g1(key), g2(key);
    Tc x1 = cast<T>(Tensor<float, Cuda>::from_vector(xs, shape)), x2 = x1.clone_nograd();
    x1.requires_grad_();
    x2.requires_grad_();
    const Tc y1 = gelu_dropout(x1, 0.3, training, g1), y2 = dropout(gelu(x2), 0.3, training, g2);
    CHECK(bit_differences(y1.to_vector(), y2.to_vector()) == "");
    sum(y1 * g).backward();
    sum(y2 * g).backward();
    CHECK(bit_differences(x1.grad().to_vector(), x2.grad().to_vector()) == "");
    CHECK(g1.reserve(1) == g2.reserve(1));
  }
}

// add_dropout(r, x) against r + dropout(x): output, both gradients, generator position; also
// with a transposed x, which takes the two-op form.
template <class T>
void check_add_dropout_op(Rng& rng) {
  using Tc = Tensor<T, Cuda>;
  const Shape shape{6, 40};
  const size_t n = static_cast<size_t>(shape.numel());
  const auto rs = rng.normal(n), xs = rng.normal(n), gs = rng.normal(n);
  const Tc g = cast<T>(Tensor<float, Cuda>::from_vector(gs, shape));
  const uint64_t key = rng.gen();
  for (const bool transposed : {false, true}) {
    for (const bool training : {true, false}) {
      INFO("training " << training << " transposed x " << transposed);
      Generator g1(key), g2(key);
      Tc r1 = cast<T>(Tensor<float, Cuda>::from_vector(rs, shape)), r2 = r1.clone_nograd();
      Tc x1 = cast<T>(Tensor<float, Cuda>::from_vector(xs, transposed ? Shape{40, 6} : shape)), x2 = x1.clone_nograd();
      for (Tc* t : {&r1, &r2, &x1, &x2}) t->requires_grad_();
      const Tc y1 = add_dropout(r1, transposed ? x1.t() : x1, 0.3, training, g1);
      const Tc y2 = r2 + dropout(transposed ? x2.t() : x2, 0.3, training, g2);
      CHECK(bit_differences(y1.to_vector(), y2.to_vector()) == "");
      sum(y1 * g).backward();
      sum(y2 * g).backward();
      CHECK(bit_differences(r1.grad().to_vector(), r2.grad().to_vector()) == "");
      CHECK(bit_differences(x1.grad().to_vector(), x2.grad().to_vector()) == "");
      CHECK(g1.reserve(1) == g2.reserve(1));
    }
  }
}

}  // namespace

TEST_CASE("GELU with dropout in one pass gives the two launches' bits", "[dropout]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  check_gelu_dropout_kernels<float>(rng);
  check_gelu_dropout_kernels<bf16>(rng);
  check_gelu_dropout_op<float>(rng);
  check_gelu_dropout_op<bf16>(rng);
  // The op with the mask kept as bits for its backward (cuda::set_gelu_dropout_keep_mask).
  const ScopedSetting<bool> keep(cuda::gelu_dropout_keep_mask, cuda::set_gelu_dropout_keep_mask, true);
  check_gelu_dropout_op<float>(rng);
  check_gelu_dropout_op<bf16>(rng);
}

TEST_CASE("a residual add after dropout in one pass gives the two ops' bits", "[dropout]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  check_add_dropout_op<float>(rng);
  check_add_dropout_op<bf16>(rng);
}

namespace {

template <class F, size_t... I>
void cpu_update(const F& f, std::vector<float>& p, const std::vector<float>& g,
                std::vector<std::vector<float>>& b, std::index_sequence<I...>) {
  cpu::optim_update(Cpu{}, static_cast<int64_t>(p.size()), f, p.data(), g.data(), b[I].data()...);
}
template <class F, size_t... I>
void cuda_update(const F& f, Buf<float>& p, const Buf<float>& g, std::vector<Buf<float>>& b,
                 std::index_sequence<I...>) {
  cuda::optim_update(Cuda{}, static_cast<int64_t>(p.size()), f, p.data(), g.data(), b[I].data()...);
}
template <class F, size_t... I>
void cpu_update_master(const F& f, std::vector<float>& m, const std::vector<bf16>& g, std::vector<bf16>& p,
                       std::vector<std::vector<float>>& b, std::index_sequence<I...>) {
  cpu::optim_update_master(Cpu{}, static_cast<int64_t>(m.size()), f, m.data(), g.data(), p.data(), b[I].data()...);
}
template <class F, size_t... I>
void cuda_update_master(const F& f, Buf<float>& m, const Buf<bf16>& g, Buf<bf16>& p, std::vector<Buf<float>>& b,
                        std::index_sequence<I...>) {
  cuda::optim_update_master(Cuda{}, static_cast<int64_t>(m.size()), f, m.data(), g.data(), p.data(),
                            b[I].data()...);
}

// ‖v‖₂ in double.
inline double norm2(const std::vector<float>& v) {
  double s = 0;
  for (const float x : v) s += double(x) * double(x);
  return std::sqrt(s);
}

// Runs `steps` updates of f on the CPU and on the GPU from the same state, then compares: once on
// fp32 parameters, once in the mixed-precision form (fp32 masters, bf16 gradients and parameters).
// A state buffer that sums gradients of both signs (Adam's m, centred RMSprop's mean) can cancel to
// a small fraction of its terms, and then the two devices' different roundings (FMA contraction)
// are large relative to it: at n = 1, m = -3.14444e-4 on the CPU against -3.14437e-4 on vts-emu
// failed the 1e-5 bound once in CI. So each buffer's error is measured against the larger of its
// norm and the norm the same updates give with |g|, the size of its terms before cancelling.
template <class F, size_t NB>
void check_optim(const F& f, size_t n, int steps, uint64_t seed) {
  const auto seq = std::make_index_sequence<NB>{};
  Rng rng(seed);
  const auto p0 = rng.normal(n);
  std::vector<float> p = p0, m = p0;
  std::vector<bf16> pb(n);
  const std::vector<std::vector<float>> zeros(NB, std::vector<float>(n, 0.0f));  // as the optimizers start them
  std::vector<std::vector<float>> bufs = zeros, mbufs = zeros;
  std::vector<float> p_abs = p0, m_abs = p0;  // the same updates on |g|: the buffers' term sizes
  std::vector<bf16> pb_abs(n);
  std::vector<std::vector<float>> bufs_abs = zeros, mbufs_abs = zeros;
  Buf<float> dp(p0), dm(p0);
  Buf<bf16> dpb(n);
  std::vector<Buf<float>> dbufs, dmbufs;
  for (size_t k = 0; k < NB; ++k) {
    dbufs.emplace_back(zeros[k]);
    dmbufs.emplace_back(zeros[k]);
  }
  for (int s = 0; s < steps; ++s) {
    const auto g = rng.normal(n);
    const Buf<float> dg(g);
    cpu_update(f, p, g, bufs, seq);
    cuda_update(f, dp, dg, dbufs, seq);
    const std::vector<bf16> gb = to_bf16(g);
    const Buf<bf16> dgb(gb);
    dpb.poison();
    cpu_update_master(f, m, gb, pb, mbufs, seq);
    cuda_update_master(f, dm, dgb, dpb, dmbufs, seq);
    std::vector<float> g_abs = g;
    for (float& x : g_abs) x = std::abs(x);
    cpu_update(f, p_abs, g_abs, bufs_abs, seq);
    cpu_update_master(f, m_abs, to_bf16(g_abs), pb_abs, mbufs_abs, seq);
  }
  CHECK(rel_err(dp.download(), p) < kTolF32);
  for (size_t k = 0; k < NB; ++k) CHECK(rel_err(dbufs[k].download(), bufs[k], norm2(bufs_abs[k])) < kTolF32);
  const auto got_master = dm.download();
  CHECK(rel_err(got_master, m) < kTolF32);
  for (size_t k = 0; k < NB; ++k) CHECK(rel_err(dmbufs[k].download(), mbufs[k], norm2(mbufs_abs[k])) < kTolF32);
  // The bf16 parameters are the rounding of the updated masters, element for element.
  const auto got_param = dpb.download();
  for (size_t i = 0; i < n; ++i) REQUIRE(got_param[i].bits == bf16(got_master[i]).bits);
}

}  // namespace

TEST_CASE("fused optimizer updates match the CPU functors", "[optim]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  using namespace vts::optim::kernel;
  for (size_t n : {size_t(1), size_t(1027), size_t(1) << 20}) {
    INFO("n " << n);
    const float lr = 1e-3f;
    // Adam/AdamW at step 3: bias corrections as the optimizer computes them.
    const double b1 = 0.9, b2 = 0.999;
    const int t = 3;
    const float neg_step = static_cast<float>(-lr / (1 - std::pow(b1, t)));
    const float bc2 = static_cast<float>(std::sqrt(1 - std::pow(b2, t)));
    check_optim<Adam<float, true, false>, 2>({neg_step, bc2, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.05f, 1 - lr * 0.05f, false},
                                             n, 3, seed);
    check_optim<Adam<float, false, false>, 2>({neg_step, bc2, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.01f, 1.0f, false},
                                              n, 3, seed + 1);
    check_optim<Adam<float, true, true>, 3>({neg_step, bc2, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.05f, 1 - lr * 0.05f, true},
                                            n, 2, seed + 2);
    check_optim<Rmsprop<float, true, true>, 3>({-lr, 0.99f, 0.01f, 1e-8f, 0.0f, 0.9f, false}, n, 3, seed + 3);
    check_optim<Rmsprop<float, false, false>, 1>({-lr, 0.99f, 0.01f, 1e-8f, 1e-4f, 0.0f, false}, n, 3, seed + 4);
    check_optim<SgdMomentum<float, true>, 1>({-lr, 1e-4f, 0.9f, 1.0f, false, false}, n, 3, seed + 5);
    check_optim<Sgd<float>, 0>({-lr, 0.0f, true}, n, 2, seed + 6);
  }
}

TEST_CASE("many-tensor optimizer updates equal the per-tensor kernel, bit for bit", "[optim]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  using F = vts::optim::kernel::Adam<float, true, false>;
  // 30 tensors (two launches of at most 24), from 1 element to 70,000, some starting off a 16-byte
  // boundary (the element path) inside one allocation, each with its own step size.
  std::vector<int64_t> sizes, offsets;
  int64_t total = 0;
  for (int i = 0; i < 30; ++i) {
    const int64_t n = i % 5 == 0 ? 1 + 7 * i : i % 5 == 1 ? 64 * i : i % 5 == 2 ? 3 : i % 5 == 3 ? 70000 : 1027;
    total += i % 4 == 1 ? 1 : 0;  // misalign the next tensor
    offsets.push_back(total);
    sizes.push_back(n);
    total += n;
  }
  std::vector<F> fs;
  for (int i = 0; i < 30; ++i)
    fs.push_back({-1e-3f * (1 + i % 3), 0.9f + 0.001f * i, 0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.05f, 0.99995f, false});
  const auto p0 = rng.normal(static_cast<size_t>(total)), g = rng.normal(static_cast<size_t>(total));
  const std::vector<float> zeros(static_cast<size_t>(total), 0.0f);
  for (const bool master : {false, true}) {
    INFO((master ? "bf16 parameters with fp32 masters" : "fp32 parameters"));
    Buf<float> p_one(p0), p_many(p0), m_one(zeros), m_many(zeros), v_one(zeros), v_many(zeros);
    Buf<float> g32(g);
    Buf<bf16> g16(to_bf16(g)), copy_one(static_cast<size_t>(total)), copy_many(static_cast<size_t>(total));
    copy_one.poison();
    copy_many.poison();
    std::vector<vts::optim::UpdateTarget<F>> targets;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const int64_t o = offsets[i], n = sizes[i];
      if (master) {
        cuda::optim_update_master(Cuda{}, n, fs[i], p_one.data() + o, g16.data() + o, copy_one.data() + o,
                                  m_one.data() + o, v_one.data() + o);
        targets.push_back({fs[i], n, p_many.data() + o, g16.data() + o, {m_many.data() + o, v_many.data() + o, nullptr},
                           copy_many.data() + o});
      } else {
        cuda::optim_update(Cuda{}, n, fs[i], p_one.data() + o, g32.data() + o, m_one.data() + o, v_one.data() + o);
        targets.push_back({fs[i], n, p_many.data() + o, g32.data() + o, {m_many.data() + o, v_many.data() + o, nullptr},
                           nullptr});
      }
    }
    cuda::optim_update_many(Cuda{}, targets.data(), targets.size());
    const auto a = p_one.download(), b = p_many.download();
    const auto ma = m_one.download(), mb = m_many.download(), va = v_one.download(), vb = v_many.download();
    for (size_t i = 0; i < a.size(); ++i) {
      REQUIRE(a[i] == b[i]);
      REQUIRE(ma[i] == mb[i]);
      REQUIRE(va[i] == vb[i]);
    }
    if (master) {
      const auto ca = copy_one.download(), cb = copy_many.download();
      for (size_t i = 0; i < ca.size(); ++i) REQUIRE(ca[i].bits == cb[i].bits);
    }
  }
  // A batch may not mix fp32 and bf16-with-master targets.
  Buf<float> p(4), m(4), v(4), g32(4);
  Buf<bf16> g16(4), copy(4);
  const vts::optim::UpdateTarget<F> mixed[] = {{fs[0], 4, p.data(), g32.data(), {m.data(), v.data(), nullptr}, nullptr},
                                              {fs[0], 4, p.data(), g16.data(), {m.data(), v.data(), nullptr}, copy.data()}};
  CHECK_THROWS_AS(cuda::optim_update_many(Cuda{}, mixed, 2), vts::Error);
}

namespace {
// An optimizer written outside vts: it calls apply_update without an UpdateBatch, so each update
// must run at once on the device too (the built-in optimizers collect theirs and launch at the end).
class PlainSgd : public vts::optim::Optimizer<float, Cuda> {
 public:
  PlainSgd(vts::optim::ParamList<float, Cuda> params, double lr)
      : vts::optim::Optimizer<float, Cuda>(std::move(params), lr, {}) {}
  void step() {
    params_.for_each_with_grad([&](size_t i, const Tensor<float, Cuda>& p, const Tensor<float, Cuda>& g) {
      apply_update(i, vts::optim::kernel::Sgd<float>{static_cast<float>(-lr_), 0.0f, false}, p, g);
    });
  }
};
}  // namespace

TEST_CASE("an optimizer that applies updates without collecting them updates at once", "[optim]") {
  std::vector<Tensor<float, Cuda>> params;
  for (int64_t n : {3, 40, 5}) {
    auto p = Tensor<float, Cuda>::from_vector(std::vector<float>(static_cast<size_t>(n), 1.0f), Shape{n});
    p.requires_grad_();
    p.set_grad(Tensor<float, Cuda>::from_vector(std::vector<float>(static_cast<size_t>(n), 2.0f), Shape{n}));
    params.push_back(p);
  }
  PlainSgd opt(params, 0.25);
  opt.step();
  for (const auto& p : params)
    for (float v : p.to_vector()) CHECK(v == 0.5f);  // 1 − 0.25 · 2
  // The built-in one collects and launches at the end of step(): same result.
  for (auto& p : params)
    p.set_grad(Tensor<float, Cuda>::from_vector(std::vector<float>(static_cast<size_t>(p.numel()), 2.0f), p.shape()));
  vts::optim::Sgd<float, Cuda> sgd(params, {.lr = 0.25});
  sgd.step();
  for (const auto& p : params)
    for (float v : p.to_vector()) CHECK(v == 0.0f);
}
