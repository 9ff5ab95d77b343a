// Float attention on the CPU (include/vts/backend/cpu/attention.hpp). AVX-512 builds run float
// heads of 2 to kSmallAttentionMaxTokens tokens a head at a time through the panel GEMM kernel;
// double, one-token heads and longer sequences keep the blocked Eigen path, which the double
// gradient checks (test_grad_layers.cpp) verify. Here the float results, forward and backward, are
// held to the double path's on the same inputs: ViT shapes (N = 17, 50, 65, 197; d = 16, 64), head
// dims that are not multiples of 16 or past 4,096, one token, a sequence past the limit; heads
// interleaved with padding between rows (as the packed qkv tensor lays them out), outputs poisoned
// around the written elements; 1 and 2 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include <vts/vts.hpp>

#include "../common/thread_count.hpp"

using namespace vts;
using vts_test_common::ThreadCount;

namespace {

constexpr float kPoison = -7.5e30f;

// B × N × H × d, heads interleaved within each token's row, `pad` elements after each row.
struct Heads {
  int64_t B, H, N, d, sn;
  std::vector<float> f;
  std::vector<double> x;
  Heads(int64_t B_, int64_t H_, int64_t N_, int64_t d_, int64_t pad)
      : B(B_), H(H_), N(N_), d(d_), sn(H_ * d_ + pad),
        f(static_cast<size_t>(B_ * N_ * sn), kPoison), x(f.size(), double(kPoison)) {}
  size_t at(int64_t b, int64_t h, int64_t n, int64_t c) const {
    return static_cast<size_t>(b * N * sn + n * sn + h * d + c);
  }
  void fill(uint64_t seed, double lo, double hi) {
    Generator g(seed);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t c = 0; c < d; ++c) {
            f[at(b, h, n, c)] = static_cast<float>(lo + (hi - lo) * g.next_double());
            x[at(b, h, n, c)] = double(f[at(b, h, n, c)]);  // the same values in both precisions
          }
  }
  HeadLayout<const float> cf() const { return {f.data(), N * sn, d, sn}; }
  HeadLayout<float> mf() { return {f.data(), N * sn, d, sn}; }
  HeadLayout<const double> cx() const { return {x.data(), N * sn, d, sn}; }
  HeadLayout<double> mx() { return {x.data(), N * sn, d, sn}; }
};

// ‖float − double‖ / ‖double‖ over the heads' elements; every element outside them still poison.
double relative_error(const Heads& got, const Heads& ref, const char* what) {
  double diff = 0, norm = 0;
  int64_t touched_padding = 0;
  for (size_t i = 0; i < got.f.size(); ++i) {
    const int64_t in_row = static_cast<int64_t>(i) % got.sn;
    if (in_row >= got.H * got.d) {
      touched_padding += got.f[i] != kPoison;
      continue;
    }
    diff += (double(got.f[i]) - ref.x[i]) * (double(got.f[i]) - ref.x[i]);
    norm += ref.x[i] * ref.x[i];
  }
  INFO(what);
  CHECK(touched_padding == 0);
  // A reference of zeros (dq and dk of a single token: its softmax is constant) makes it absolute.
  return std::sqrt(diff / (norm > 0 ? norm : 1.0));
}

struct Case {
  int64_t B, H, N, d;
};

struct Results {
  Heads o, dq, dk, dv;
  std::vector<float> lse;
};

Results run_float(const Case& c, const Heads& q, const Heads& k, const Heads& v, const Heads& g, float scale) {
  Results r{Heads(c.B, c.H, c.N, c.d, 3), Heads(c.B, c.H, c.N, c.d, 5), Heads(c.B, c.H, c.N, c.d, 1),
            Heads(c.B, c.H, c.N, c.d, 2), std::vector<float>(static_cast<size_t>(c.B * c.H * c.N), kPoison)};
  cpu::attention_forward<float>(cpu::Device{}, c.B, c.H, c.N, c.d, scale, q.cf(), k.cf(), v.cf(), r.o.mf(),
                                r.lse.data());
  cpu::attention_backward<float>(cpu::Device{}, c.B, c.H, c.N, c.d, scale, q.cf(), k.cf(), v.cf(), r.o.cf(),
                                 r.lse.data(), g.cf(), r.dq.mf(), r.dk.mf(), r.dv.mf());
  return r;
}

}  // namespace

TEST_CASE("float attention forward and backward agree with the double path", "[attention][float]") {
  const Case cases[] = {{2, 4, 17, 16},  // ViTTiny28
                        {1, 3, 50, 64},  // ViT-B/32
                        {1, 2, 65, 64},  // small
                        {1, 2, 197, 64}, // ViT-B/16
                        {2, 2, 70, 20},  // d not a multiple of 16
                        {1, 3, 9, 3},
                        {1, 2, 9, 4100}, // deeper than 4,096: the panel kernel cuts Q·Kᵀ's k into blocks
                        {3, 1, 1, 16},   // one token
                        {1, 1, 1030, 4}}; // past the small path's limit: the blocked path
  for (const Case& c : cases) {
    INFO("B " << c.B << " H " << c.H << " N " << c.N << " d " << c.d);
    Heads q(c.B, c.H, c.N, c.d, 7), k(c.B, c.H, c.N, c.d, 0), v(c.B, c.H, c.N, c.d, 4), g(c.B, c.H, c.N, c.d, 2);
    q.fill(1, -2, 2);
    k.fill(2, -2, 2);
    v.fill(3, -1, 1);
    g.fill(4, -1, 1);
    const float scale = 1.0f / std::sqrt(float(c.d));

    Heads o(c.B, c.H, c.N, c.d, 3), dq(c.B, c.H, c.N, c.d, 5), dk(c.B, c.H, c.N, c.d, 1), dv(c.B, c.H, c.N, c.d, 2);
    std::vector<double> lse(static_cast<size_t>(c.B * c.H * c.N));
    cpu::attention_forward<double>(cpu::Device{}, c.B, c.H, c.N, c.d, double(scale), q.cx(), k.cx(), v.cx(), o.mx(),
                                   lse.data());
    cpu::attention_backward<double>(cpu::Device{}, c.B, c.H, c.N, c.d, double(scale), q.cx(), k.cx(), v.cx(),
                                    o.cx(), lse.data(), g.cx(), dq.mx(), dk.mx(), dv.mx());

    const ThreadCount one(1);
    const Results r = run_float(c, q, k, v, g, scale);
    CHECK(relative_error(r.o, o, "o") < 1e-5);
    CHECK(relative_error(r.dq, dq, "dq") < 1e-5);
    CHECK(relative_error(r.dk, dk, "dk") < 1e-5);
    CHECK(relative_error(r.dv, dv, "dv") < 1e-5);
    double lse_err = 0;
    for (size_t i = 0; i < lse.size(); ++i) lse_err = std::max(lse_err, std::abs(double(r.lse[i]) - lse[i]));
    CHECK(lse_err < 1e-5 * std::log(double(c.N) + 1) + 1e-6);

    // Each (batch, head) is computed whole by one thread: the same bits at any thread count.
    const ThreadCount two(2);
    const Results r2 = run_float(c, q, k, v, g, scale);
    CHECK(r2.o.f == r.o.f);
    CHECK(r2.lse == r.lse);
    CHECK(r2.dq.f == r.dq.f);
    CHECK(r2.dk.f == r.dk.f);
    CHECK(r2.dv.f == r.dv.f);
  }
}
