// Fused attention forward and backward against vts::cpu::attention_forward / attention_backward,
// in the separate [B, H, N, d] layout and in the packed ViT layout qkv [B, N, 3·H·d] (read and
// its gradient written in place), at N = 197 (ViT-B/16), N = 50 (ViT-B/32) and odd sizes.
#include "cuda_test_util.hpp"
#include "vts/backend/cpu/attention.hpp"
#include "vts/backend/cuda/attention.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {

struct AttnCase {
  int64_t B, H, N, d;
  bool packed;
};

// Offsets and strides of q, k, v (and o) in one flat buffer: packed = qkv [B, N, 3, H, d] and
// o [B, N, H, d]; otherwise three [B, H, N, d] tensors one after another and o [B, H, N, d].
struct Geometry {
  int64_t in_elems, out_elems;
  int64_t off[3];
  int64_t sb, sh, sn;        // of q, k, v
  int64_t osb, osh, osn;     // of o / dout
  explicit Geometry(const AttnCase& c) {
    const int64_t one = c.B * c.H * c.N * c.d;
    if (c.packed) {
      in_elems = 3 * one;
      for (int i = 0; i < 3; ++i) off[i] = i * c.H * c.d;
      sb = c.N * 3 * c.H * c.d;
      sh = c.d;
      sn = 3 * c.H * c.d;
      osb = c.N * c.H * c.d;
      osh = c.d;
      osn = c.H * c.d;
    } else {
      in_elems = 3 * one;
      for (int i = 0; i < 3; ++i) off[i] = i * one;
      sb = c.H * c.N * c.d;
      sh = c.N * c.d;
      sn = c.d;
      osb = sb;
      osh = sh;
      osn = sn;
    }
    out_elems = one;
  }
  template <class T>
  HeadLayout<T> in(T* base, int i) const {
    return {base + off[i], sb, sh, sn};
  }
  template <class T>
  HeadLayout<T> out(T* base) const {
    return {base, osb, osh, osn};
  }
};

const AttnCase kCases[] = {{2, 3, 197, 64, false}, {2, 12, 50, 64, true}, {1, 2, 17, 32, false},
                           {1, 2, 130, 128, true}, {3, 2, 1, 64, false},   {1, 4, 256, 64, true},
                           {1, 2, 257, 32, false}, {3, 4, 17, 16, true},   {1, 3, 65, 16, false},
                           {1, 2, 300, 64, true},  {1, 1, 90, 64, false},  {1, 1, 140, 64, true}};

// Put the process-wide choices of the bf16 kernels' schedules back as they were.
struct RestoreForwardRows {
  int rows = cuda::attention_bf16_forward_rows();
  int warp_rows = cuda::attention_bf16_forward_warp_rows();
  ~RestoreForwardRows() {
    cuda::set_attention_bf16_forward_rows(rows);
    cuda::set_attention_bf16_forward_warp_rows(warp_rows);
  }
};
struct RestoreBackwardSchedule {
  int barriers = cuda::attention_bf16_backward_barriers();
  bool split = cuda::attention_bf16_backward_split();
  ~RestoreBackwardSchedule() {
    cuda::set_attention_bf16_backward_barriers(barriers);
    cuda::set_attention_bf16_backward_split(split);
  }
};

// The bf16 forward's ways of running the default layout's key tiles (cuda::set_attention_bf16_
// forward_narrow_last_tile, _mask_last_tile_only, _unrolled_loads, _fold_scale), set for a scope.
struct ScopedForwardTileCode {
  ScopedSetting<bool> narrow, mask, loads, fold;
  ScopedForwardTileCode(bool narrow_last_tile, bool mask_last_tile_only, bool unrolled_loads, bool fold_scale)
      : narrow(cuda::attention_bf16_forward_narrow_last_tile, cuda::set_attention_bf16_forward_narrow_last_tile,
               narrow_last_tile),
        mask(cuda::attention_bf16_forward_mask_last_tile_only, cuda::set_attention_bf16_forward_mask_last_tile_only,
             mask_last_tile_only),
        loads(cuda::attention_bf16_forward_unrolled_loads, cuda::set_attention_bf16_forward_unrolled_loads,
              unrolled_loads),
        fold(cuda::attention_bf16_forward_fold_scale, cuda::set_attention_bf16_forward_fold_scale, fold_scale) {}
};

struct Reference {
  std::vector<float> o, lse, dqkv;
};

Reference cpu_reference(const AttnCase& c, const Geometry& geo, const std::vector<float>& qkv,
                        const std::vector<float>& dout, float scale, const std::vector<float>* o_override) {
  Reference r;
  r.o.assign(static_cast<size_t>(geo.out_elems), 0.0f);
  r.lse.assign(static_cast<size_t>(c.B * c.H * c.N), 0.0f);
  r.dqkv.assign(static_cast<size_t>(geo.in_elems), 0.0f);
  const float* base = qkv.data();
  cpu::attention_forward(Cpu{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1), geo.in(base, 2),
                         geo.out(r.o.data()), r.lse.data());
  const float* o = o_override ? o_override->data() : r.o.data();
  cpu::attention_backward(Cpu{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1), geo.in(base, 2),
                          geo.out(o), r.lse.data(), geo.out(dout.data()), geo.in(r.dqkv.data(), 0),
                          geo.in(r.dqkv.data(), 1), geo.in(r.dqkv.data(), 2));
  return r;
}

// dq, dk and dv (at their places in the gradient buffer) against the reference, one check each, so
// that a failure says which gradient is off.
void check_gradients(const AttnCase& c, const Geometry& geo, const std::vector<float>& got,
                     const std::vector<float>& want, double tol) {
  const char* names[] = {"dq", "dk", "dv"};
  for (int part = 0; part < 3; ++part) {
    std::vector<float> g, r;
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t n = 0; n < c.N; ++n)
          for (int64_t i = 0; i < c.d; ++i) {
            const size_t at = static_cast<size_t>(geo.off[part] + b * geo.sb + h * geo.sh + n * geo.sn + i);
            g.push_back(got[at]);
            r.push_back(want[at]);
          }
    INFO(names[part]);
    CHECK(rel_err(g, r) < tol);
  }
}

}  // namespace

// With cuda::set_attention_f32_skip_padding too: the work past N left out, the same bits.
TEST_CASE("attention fp32: forward, lse and backward match the CPU", "[attention]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : kCases) {
    INFO("B " << c.B << " H " << c.H << " N " << c.N << " d " << c.d << " packed " << c.packed);
    const Geometry geo(c);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    const auto qkv = rng.normal(static_cast<size_t>(geo.in_elems));
    const auto dout = rng.normal(static_cast<size_t>(geo.out_elems));
    const Reference ref = cpu_reference(c, geo, qkv, dout, scale, nullptr);

    Buf<float> dqkv_in(qkv), dO(static_cast<size_t>(geo.out_elems)), dlse(ref.lse.size());
    Buf<float> dgrad(dout), dgx(static_cast<size_t>(geo.in_elems));
    const float* base = dqkv_in.data();
    std::vector<std::vector<float>> default_results;
    for (const bool skip : {false, true}) {
      INFO("skip_padding " << skip);
      const ScopedSetting<bool> skip_padding(cuda::attention_f32_skip_padding, cuda::set_attention_f32_skip_padding,
                                             skip);
      dO.poison();
      dlse.poison();
      cuda::attention_forward(Cuda{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1), geo.in(base, 2),
                              geo.out(dO.data()), dlse.data());
      CHECK(rel_err(dO.download(), ref.o) < kTolF32);
      CHECK(rel_err(dlse.download(), ref.lse) < kTolF32);

      dgx.poison();
      const float* o = dO.data();
      cuda::attention_backward(Cuda{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1),
                               geo.in(base, 2), geo.out(o), dlse.data(),
                               geo.out(static_cast<const float*>(dgrad.data())), geo.in(dgx.data(), 0),
                               geo.in(dgx.data(), 1), geo.in(dgx.data(), 2));
      check_gradients(c, geo, dgx.download(), ref.dqkv, kTolF32);
      const std::vector<std::vector<float>> results{dO.download(), dlse.download(), dgx.download()};
      if (!skip) {
        default_results = results;
      } else {
        CHECK(bit_differences(results[0], default_results[0]) == "");
        CHECK(bit_differences(results[1], default_results[1]) == "");
        CHECK(bit_differences(results[2], default_results[2]) == "");
      }
    }
  }
}

// One bf16 case: inputs rounded to bf16 and their CPU reference, on the device; the forward into
// o and lse, and the backward into dqkv, with whatever kernels the current settings choose. The
// backward gets the reference's o rounded to bf16 and its lse, and is compared with the CPU
// backward of the same rounded o (ref_bwd): that measures the backward kernel alone.
struct Bf16Case {
  const AttnCase& c;
  Geometry geo;
  float scale;
  std::vector<float> qkv, dout;
  Reference ref, ref_bwd;
  Buf<bf16> qkv_dev, dout_dev, o_ref_dev, o, dqkv;
  Buf<float> lse_ref_dev, lse;
  // scale_: the softmax scale, 1/√d unless given (any sign; the kernels take it as it comes).
  Bf16Case(const AttnCase& c_, Rng& rng, float scale_ = 0.0f)
      : c(c_),
        geo(c_),
        scale(scale_ != 0.0f ? scale_ : 1.0f / std::sqrt(static_cast<float>(c_.d))),
        qkv(round_bf16(rng.normal(static_cast<size_t>(geo.in_elems)))),
        dout(round_bf16(rng.normal(static_cast<size_t>(geo.out_elems)))),
        ref(cpu_reference(c, geo, qkv, dout, scale, nullptr)),
        ref_bwd(backward_reference()),
        qkv_dev(bf16_buf(qkv)),
        dout_dev(bf16_buf(dout)),
        o_ref_dev(bf16_buf(round_bf16(ref.o))),
        o(static_cast<size_t>(geo.out_elems)),
        dqkv(static_cast<size_t>(geo.in_elems)),
        lse_ref_dev(ref.lse),
        lse(ref.lse.size()) {}
  Reference backward_reference() const {
    const auto o_bf = round_bf16(ref.o);
    return cpu_reference(c, geo, qkv, dout, scale, &o_bf);
  }
  void forward() {
    o.poison();
    lse.poison();
    const bf16* base = qkv_dev.data();
    cuda::attention_forward(Cuda{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1), geo.in(base, 2),
                            geo.out(o.data()), lse.data());
  }
  void check_forward() {
    CHECK(rel_err(o.download(), ref.o) < kTolBf16);
    CHECK(rel_err(lse.download(), ref.lse) < 1e-4);
  }
  void backward() {
    dqkv.poison();
    const bf16* base = qkv_dev.data();
    cuda::attention_backward(Cuda{}, c.B, c.H, c.N, c.d, scale, geo.in(base, 0), geo.in(base, 1), geo.in(base, 2),
                             geo.out(static_cast<const bf16*>(o_ref_dev.data())), lse_ref_dev.data(),
                             geo.out(static_cast<const bf16*>(dout_dev.data())), geo.in(dqkv.data(), 0),
                             geo.in(dqkv.data(), 1), geo.in(dqkv.data(), 2));
  }
  void check_backward() { check_gradients(c, geo, to_float(dqkv.download()), ref_bwd.dqkv, kTolBf16); }
};

TEST_CASE("attention bf16 (tensor cores): forward and backward within bf16 tolerance", "[attention]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  for (const auto& c : kCases) {
    INFO("B " << c.B << " H " << c.H << " N " << c.N << " d " << c.d << " packed " << c.packed);
    Bf16Case t(c, rng);
    // Every layout of the forward kernel — 64 or 128 query rows a block, 16 or 32 a warp (the
    // wider ones only for d ≤ 64; d = 128 takes the default) — then the default.
    struct ForwardLayout {
      int rows, warp_rows;
    };
    for (const ForwardLayout layout : {ForwardLayout{64, 16}, {128, 16}, {64, 32}, {128, 32}, {0, 0}}) {
      INFO("forward rows per block " << layout.rows << ", per warp " << layout.warp_rows);
      const RestoreForwardRows restore;
      cuda::set_attention_bf16_forward_rows(layout.rows);
      cuda::set_attention_bf16_forward_warp_rows(layout.warp_rows);
      t.forward();
      t.check_forward();
    }
    {
      // The default layout's other ways of running its key tiles, in every combination: a last tile
      // of at most 16 keys done as 16 (N = 1, 65, 130, 197, 257 here), the key mask only where a
      // tile reaches past N, the unrolled tile loads, the scale folded into the exponentials (the
      // last three at d = 64 only). The first three give the default's bits: the keys left out have
      // probability 0, the mask keeps s·c where it keeps a key, and the copies are the same. The
      // folded scale rounds otherwise: within tolerance of the CPU, and with any of the other three
      // its own bits.
      const auto default_o = t.o.download();
      const auto default_lse = t.lse.download();
      auto folded_o = default_o;
      auto folded_lse = default_lse;
      for (int code = 1; code < 16; ++code) {
        const bool narrow = code & 1, mask_last_only = code & 2, unrolled_loads = code & 4, fold = code & 8;
        INFO("forward: narrow last tile " << narrow << ", mask in the last tile only " << mask_last_only
                                          << ", unrolled loads " << unrolled_loads << ", folded scale " << fold);
        const ScopedForwardTileCode setting(narrow, mask_last_only, unrolled_loads, fold);
        t.forward();
        if (code == 8) {  // the folded scale alone, first of its eight
          t.check_forward();
          folded_o = t.o.download();
          folded_lse = t.lse.download();
          continue;
        }
        CHECK(bit_differences(t.o.download(), fold ? folded_o : default_o) == "");
        CHECK(bit_differences(t.lse.download(), fold ? folded_lse : default_lse) == "");
      }
    }

    if (!cuda::attention_supported(cuda::AttentionDtype::bf16, true, c.N, c.d)) {
      // A head dim the bf16 backward does not build (128): the launcher refuses clearly.
      CHECK_THROWS_AS(t.backward(), vts::Error);
      continue;
    }
    // Every layout of the backward: the one-CTA kernel with one and with two barriers per query
    // block (N ≤ 256), the split kernels, then the default (the split kernels past N = 256). The
    // Hopper kernels have a family of their own, [wgmma].
    struct Schedule {
      bool split;
      int barriers;
    };
    std::vector<Schedule> schedules{{false, 0}};
    if (c.N <= 256) schedules.insert(schedules.begin(), {{false, 1}, {false, 2}, {true, 0}});
    for (const Schedule& sched : schedules) {
      INFO("backward: split " << sched.split << ", barriers per query block " << sched.barriers);
      const RestoreBackwardSchedule restore;
      cuda::set_attention_bf16_backward_barriers(sched.barriers);
      cuda::set_attention_bf16_backward_split(sched.split);
      t.backward();
      t.check_backward();
    }
    if (c.N == 197) {
      // A negative scale large enough that scale·s spans more than fp32's exponent range, through
      // the default kernels and the forward's other ways of running its tiles (a kernel that took
      // the row maximum for a positive scale only would overflow).
      INFO("scale -20");
      Bf16Case negative(c, rng, -20.0f);
      for (const bool variants : {false, true}) {
        // (The folded scale takes a positive scale only: here it must leave the forward as it is.)
        INFO("narrow last tile, mask in the last tile only, unrolled loads, folded scale: " << variants);
        const ScopedForwardTileCode setting(variants, variants, variants, variants);
        negative.forward();
        negative.check_forward();
      }
      for (const bool split : {false, true}) {
        INFO("backward, split " << split);
        const RestoreBackwardSchedule restore;
        cuda::set_attention_bf16_backward_split(split);
        negative.backward();
        negative.check_backward();
      }
    }
  }
}

// The Hopper kernels (wgmma, sm_90a): a family of their own, [wgmma], run in a process of its own by
// ctest and gpu-check, so that a fault in them on their first device run leaves [attention] whole.
TEST_CASE("Hopper attention (wgmma): forward and backward within bf16 tolerance", "[wgmma]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  int cases = 0;
  const ScopedSetting<bool> fwd(cuda::attention_bf16_forward_wgmma, cuda::set_attention_bf16_forward_wgmma, true);
  const ScopedSetting<bool> bwd(cuda::attention_bf16_backward_wgmma, cuda::set_attention_bf16_backward_wgmma, true);
  for (const auto& c : kCases) {
    // Where they apply: d = 64, N ≤ 256 — here every width of the last chunk (N = 1 and 197: 8,
    // 140: 16, 90: 32, 50 and 256: 64) — on compute capability 9.0 (vts-emu reports 9.0).
    if (!cuda::attention_bf16_wgmma_supported(c.N, c.d)) continue;
    ++cases;
    INFO("B " << c.B << " H " << c.H << " N " << c.N << " d " << c.d << " packed " << c.packed);
    Bf16Case t(c, rng);
    // Forward: not the mma.sync kernel's bits (one softmax pass, not per-tile rescaling).
    for (const int blocks : {3, 0}) {  // register budgets: 3 blocks an SM, then the default
      INFO("forward, blocks per SM " << blocks);
      const ScopedSetting<int> budget(cuda::attention_bf16_forward_wgmma_blocks,
                                      cuda::set_attention_bf16_forward_wgmma_blocks, blocks);
      t.forward();
      t.check_forward();
    }
    t.backward();
    t.check_backward();
    if (c.N == 197) {
      // A negative scale, large enough that scale·s spans more than fp32's exponent range: the
      // forward must take each row's maximum of scale·s from its smallest score (its largest would
      // overflow the exponentials).
      INFO("forward with scale -20");
      Bf16Case negative(c, rng, -20.0f);
      negative.forward();
      negative.check_forward();
      negative.backward();
      negative.check_backward();
    }
  }
  const cuda::DeviceInfo& info = cuda::device_info();
  if (cuda::attention_bf16_wgmma_supported(1, 64)) CHECK(cases == 6);
  else WARN("Hopper attention kernels not run: compute capability " << info.major << "." << info.minor << ", not 9.0");
}

TEST_CASE("wgmma reads its operands in the layouts the Hopper kernels rely on", "[wgmma]") {
  // The descriptors' byte offsets (K-major and MN-major, no swizzle) and the register fragment,
  // each on its own: if the Hopper kernels fail on a device, this says which one is misread.
  if (!cuda::attention_bf16_wgmma_supported(1, 64)) {
    const cuda::DeviceInfo& info = cuda::device_info();
    WARN("wgmma layout check not run: compute capability " << info.major << "." << info.minor << ", not 9.0");
    return;
  }
  std::vector<uint16_t> a(64 * 16), b(16 * 16);
  for (size_t i = 0; i < a.size(); ++i) a[i] = vts::bf16(float(int(i * 7 % 23) - 11) / 8.0f).bits;
  for (size_t i = 0; i < b.size(); ++i) b[i] = vts::bf16(float(int(i * 5 % 19) - 9) / 4.0f).bits;
  Buf<uint16_t> da(a), db(b);
  constexpr int kChecks = cuda::detail::kWgmmaLayoutChecks;
  Buf<float> dd(size_t(kChecks) * 64 * 16);
  dd.poison();
  cuda::detail::wgmma_layout_check(da.data(), db.data(), dd.data());
  const auto d = dd.download();
  auto value = [](uint16_t bits) {
    vts::bf16 h;
    h.bits = bits;
    return static_cast<float>(h);
  };
  int wrong[kChecks] = {};
  for (int v = 0; v < kChecks; ++v)
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 16; ++j) {
        float want = 0.0f;
        for (int k = 0; k < 16; ++k) want += value(a[size_t(i * 16 + k)]) * value(b[size_t(k * 16 + j)]);
        wrong[v] += d[size_t((v * 64 + i) * 16 + j)] != want;  // small integers over powers of two: exact
      }
  // [3] and [4] read the same tiles with each descriptor's two byte offsets exchanged: should [0] or
  // [1] fail on a device while these pass, the offsets' meaning is the other way round.
  INFO("elements of 1,024 wrong: A and B K-major " << wrong[0] << ", B MN-major " << wrong[1] << ", A from registers "
                                                   << wrong[2] << "; with the descriptors' offsets exchanged: K-major "
                                                   << wrong[3] << ", MN-major " << wrong[4]);
  CHECK(wrong[0] == 0);
  CHECK(wrong[1] == 0);
  CHECK(wrong[2] == 0);
}

TEST_CASE("attention launchers reject what the kernels do not support", "[attention]") {
  Buf<float> buf(4 * 3 * 16 * 80);
  float* p = buf.data();
  const HeadLayout<const float> in{p, 3 * 16 * 80, 16 * 80, 80};
  const HeadLayout<float> out{p, 3 * 16 * 80, 16 * 80, 80};
  Buf<float> lse(4 * 3 * 16);
  // head dim 80 is not built
  CHECK_THROWS_AS(cuda::attention_forward(Cuda{}, 4, 3, 16, 80, 0.1f, in, in, in, out, lse.data()), vts::Error);
  // rows not 16-byte aligned
  const HeadLayout<const float> odd{p + 1, 3 * 16 * 64, 16 * 64, 64};
  const HeadLayout<float> odd_out{p + 1, 3 * 16 * 64, 16 * 64, 64};
  CHECK_THROWS_AS(cuda::attention_forward(Cuda{}, 1, 3, 16, 64, 0.1f, odd, odd, odd, odd_out, lse.data()), vts::Error);
  CHECK(cuda::attention_supported(cuda::AttentionDtype::bf16, true, 197, 64));
  CHECK_THROWS_AS(cuda::set_attention_bf16_forward_rows(96), vts::Error);
  CHECK_THROWS_AS(cuda::set_attention_bf16_forward_warp_rows(64), vts::Error);
  CHECK_THROWS_AS(cuda::set_attention_bf16_backward_barriers(3), vts::Error);
  CHECK_THROWS_AS(cuda::set_attention_bf16_forward_wgmma_blocks(4), vts::Error);
  CHECK(cuda::attention_supported(cuda::AttentionDtype::bf16, true, 577, 64));  // the split kernels
  CHECK(cuda::attention_supported(cuda::AttentionDtype::f32, true, 577, 64));
  CHECK(!cuda::attention_supported(cuda::AttentionDtype::bf16, true, 197, 128));
}
