// The float GEMM kernel of AVX-512 builds (include/vts/backend/cpu/panel_gemm.hpp).
// Every element of C is one FMA chain over k in order, so the kernel is checked for exact equality
// with that chain written as scalar std::fma calls: every count of leftover rows (1-6) and columns
// (1-64 of a panel, and several panels), depths that are not multiples of the 16-wide transposes,
// padded leading dimensions, both layouts of A and B, alpha and beta, at 1, 2 and 3 threads, with k
// whole and cut into blocks (the chains carried from block to block in float). Which products gemm
// gives it is checked too. On a build without AVX-512 the kernel is compiled out and
// only that is checked.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include <vts/vts.hpp>

#include "../common/thread_count.hpp"

using namespace vts;
using vts_test_common::ThreadCount;

namespace {

// A rows × cols matrix stored row- or column-major with `pad` poisoned elements after each row
// (column), filled with values whose products do not round to the same sums in another order.
struct Stored {
  std::vector<float> data;
  MatrixRef<float> ref;
  Stored(int64_t rows, int64_t cols, bool row_major, int64_t pad, uint64_t seed) {
    const int64_t ld = (row_major ? cols : rows) + pad;
    data.assign(static_cast<size_t>(ld * (row_major ? rows : cols)), -1e30f);
    Generator g(seed);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        data[static_cast<size_t>(row_major ? i * ld + j : j * ld + i)] = static_cast<float>(g.next_double() * 2 - 1);
    ref = row_major ? MatrixRef<float>{data.data(), rows, cols, ld, 1}
                    : MatrixRef<float>{data.data(), rows, cols, 1, ld};
  }
  float at(int64_t i, int64_t j) const { return ref.data[i * ref.row_stride + j * ref.col_stride]; }
};

// The kernel's arithmetic, one element at a time.
[[maybe_unused]] float fma_chain(const Stored& a, const Stored& b, int64_t i, int64_t j, float alpha, float beta,
                                 float old) {
  float acc = 0.0f;
  for (int64_t p = 0; p < a.ref.cols; ++p) acc = std::fma(a.at(i, p), b.at(p, j), acc);
  if (beta == 0.0f) return alpha == 1.0f ? acc : alpha * acc;
  return std::fma(alpha, acc, beta == 1.0f ? old : beta * old);
}

// The elements of C (A·B, row-major with B's width) that are not the FMA chain over k.
int64_t differ_from_chains(const std::vector<float>& c, const MatrixRef<float>& a, const MatrixRef<float>& b) {
  auto at = [](const MatrixRef<float>& r, int64_t i, int64_t j) { return r.data[i * r.row_stride + j * r.col_stride]; };
  int64_t differ = 0;
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < b.cols; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < a.cols; ++p) acc = std::fma(at(a, i, p), at(b, p, j), acc);
      differ += !(c[static_cast<size_t>(i * b.cols + j)] == acc);
    }
  return differ;
}

#if defined(__AVX512F__)
// NaN in the calling thread's buffer of packed B (which the threads of a product share), so that a
// part of B left unpacked cannot pass on the values an earlier product left there.
void poison_packed_b(int64_t k, int64_t n) {
  const int64_t floats = k * ((n + cpu::detail::kPanelCols - 1) / cpu::detail::kPanelCols) * cpu::detail::kPanelCols;
  float* packed = cpu::detail::panel_buffer<0>(static_cast<size_t>(floats));
  std::fill(packed, packed + floats, NAN);
}
#endif

}  // namespace

TEST_CASE("panel GEMM: exactly the FMA chain over k, every tile remainder and layout, any thread count", "[matmul]") {
  if (!cpu::detail::kPanelGemmCompiled) {
    WARN("built without AVX-512: the panel kernel is compiled out, products go to Eigen");
    return;
  }
#if defined(__AVX512F__)
  struct Case {
    int64_t m, n, k;
  };
  // m: 1-13 rows (every remainder of 6), then more tiles than threads; n: 1-64 columns of a
  // panel and several panels with a narrow last one; k: 1, under 16, not a multiple of 16. With B
  // column-major, 16-128 rows and n ≥ 2m are computed as Cᵀ = Bᵀ·Aᵀ (panel_gemm_transposes): the
  // last four cases, with whole and partial 16 × 16 store blocks along both m and n.
  const Case cases[] = {{1, 5, 3},   {2, 16, 1},   {3, 17, 16},   {4, 33, 17},  {5, 48, 40},   {6, 63, 31},
                        {7, 64, 64}, {8, 65, 7},   {11, 130, 33}, {12, 2, 50},  {13, 200, 65}, {50, 96, 129},
                        {97, 70, 300}, {16, 32, 1}, {17, 47, 20}, {29, 300, 9}, {128, 257, 17}};
  struct Scale {
    float alpha, beta;
  };
  const Scale scales[] = {{1, 0}, {0.5f, 0}, {1, 1}, {-2, 0.25f}};
  uint64_t seed = 1;
  for (const Case& s : cases) {
    for (int layout = 0; layout < 4; ++layout) {
      const bool a_rows = layout & 1, b_rows = layout & 2;
      for (int64_t pad : {0, 5}) {
        const Stored a(s.m, s.k, a_rows, pad, seed++), b(s.k, s.n, b_rows, pad, seed++);
        const int64_t ldc = s.n + pad;
        for (const Scale& sc : scales) {
          INFO(s.m << "x" << s.k << " times " << s.k << "x" << s.n << ", A " << (a_rows ? "row" : "column")
                    << "-major, B " << (b_rows ? "row" : "column") << "-major, pad " << pad << ", alpha "
                    << sc.alpha << ", beta " << sc.beta);
          // C's own values where beta reads them; NaN where it must not (beta = 0); the padding
          // after each row of C is a sentinel no store may touch.
          std::vector<float> start(static_cast<size_t>(s.m * ldc), 12345.0f);
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j)
              start[static_cast<size_t>(i * ldc + j)] = sc.beta == 0 ? NAN : static_cast<float>(i - j) / 8;
          std::vector<float> want = start;
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j) {
              float& w = want[static_cast<size_t>(i * ldc + j)];
              w = fma_chain(a, b, i, j, sc.alpha, sc.beta, w);
            }
          // depth_block 0: k whole (up to kPanelMaxDepth); 7: blocks of at most 7 rows, so every
          // case with k > 7 runs first, middle and last blocks, and 16 × 16 transposes of B cut short.
          for (int64_t depth_block : {0, 7}) {
            for (int threads : {1, 2, 3}) {
              INFO(threads << " threads, depth block " << depth_block);
              ThreadCount scope(threads);
              std::vector<float> c = start;
              cpu::detail::panel_gemm(a.ref, b.ref, c.data(), ldc, sc.alpha, sc.beta, depth_block);
              int64_t differ = 0;
              for (size_t e = 0; e < c.size(); ++e) differ += !(c[e] == want[e]);
              CHECK(differ == 0);
            }
          }
        }
      }
    }
  }
#endif
}

TEST_CASE("panel GEMM: a product large enough to share among threads is the same chain", "[matmul][threads]") {
  if (!cpu::detail::kPanelGemmCompiled) {
    WARN("built without AVX-512: the panel kernel is compiled out, products go to Eigen");
    return;
  }
  // Both loop orders (A smaller than B: panels outside, each thread packing its own; and the
  // reverse) through cpu::gemm, as the linear layers call it, at 1-3 threads; then products deeper
  // than kPanelMaxDepth, which gemm gives the kernel with k cut into blocks: five blocks of 916
  // rows, groups of tiles (140 rows: two groups of 16 tiles, the second partial) by panels.
  // The tiny model's all-token head at batch 64 and 40 × 700 × 90 go through Cᵀ = Bᵀ·Aᵀ.
  for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{300, 200, 70}, {40, 700, 90}, {140, 70, 4580},
                                {20, 130, 4100}, {64, 1024, 1088}}) {
    const Stored a(m, k, true, 0, 7), w(n, k, true, 0, 8);  // C = A·Wᵀ: B column-major
    const MatrixRef<float> wt{w.data.data(), k, n, 1, k};
    REQUIRE(cpu::detail::panel_gemm_takes(a.ref, wt));
    for (int threads : {1, 2, 3}) {
      INFO(m << "x" << n << "x" << k << ", " << threads << " threads");
      ThreadCount scope(threads);
      std::vector<float> c(static_cast<size_t>(m * n), NAN);
      cpu::gemm(Cpu{}, a.ref, wt, c.data(), n, 1.0f, 0.0f);
      CHECK(differ_from_chains(c, a.ref, wt) == 0);
    }
  }
  // A weight gradient, C = gᵀ·X (A column-major, B row-major), as the linear layer's backward
  // calls it: B is packed on all threads in pieces of kPanelPackRows rows of a panel. The tiny
  // model's fc1 (one panel, 1,088 rows: four whole pieces and a partial one) and a B of two panels,
  // the second narrow, whose last piece is not a multiple of the 16-row transposes.
  for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{256, 64, 1088}, {200, 70, 300}}) {
    const Stored g(k, m, true, 0, 9), x(k, n, true, 0, 10);
    const MatrixRef<float> gt{g.data.data(), m, k, 1, m};
    REQUIRE(cpu::detail::panel_gemm_takes(gt, x.ref));
    for (int threads : {1, 2, 3}) {
      INFO("weight gradient " << m << "x" << n << "x" << k << ", " << threads << " threads");
      ThreadCount scope(threads);
#if defined(__AVX512F__)
      poison_packed_b(k, n);
#endif
      std::vector<float> c(static_cast<size_t>(m * n), NAN);
      cpu::gemm(Cpu{}, gt, x.ref, c.data(), n, 1.0f, 0.0f);
      CHECK(differ_from_chains(c, gt, x.ref) == 0);
    }
  }
}

TEST_CASE("panel GEMM: k cut into blocks with more sums than one buffer keeps: C in bands of rows", "[matmul]") {
  if (!cpu::detail::kPanelGemmCompiled) {
    WARN("built without AVX-512: the panel kernel is compiled out, products go to Eigen");
    return;
  }
#if defined(__AVX512F__)
  // B 32,700 columns wide (32,704 padded): the sums of 260 rows pass kPanelMaxPackedFloats, so the
  // rows go in bands of 126, 126 and 8, each cut into blocks of at most 7 of k's 20 rows.
  const int64_t m = 260, k = 20, n = 32700;
  const Stored a(m, k, false, 0, 11), b(k, n, true, 0, 12);
  std::vector<float> want(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) want[static_cast<size_t>(i * n + j)] = fma_chain(a, b, i, j, 1.0f, 0.0f, 0.0f);
  for (int threads : {1, 2}) {
    INFO(threads << " threads");
    ThreadCount scope(threads);
    std::vector<float> c(want.size(), NAN);
    cpu::detail::panel_gemm(a.ref, b.ref, c.data(), n, 1.0f, 0.0f, 7);
    int64_t differ = 0;
    for (size_t e = 0; e < c.size(); ++e) differ += !(c[e] == want[e]);
    CHECK(differ == 0);
  }
#endif
}

TEST_CASE("panel GEMM: which float products gemm gives it", "[matmul]") {
  auto takes = [](int64_t m, int64_t k, int64_t n, bool a_rows = true, bool b_rows = false) {
    const float* none = nullptr;
    const MatrixRef<float> a = a_rows ? MatrixRef<float>{none, m, k, k, 1} : MatrixRef<float>{none, m, k, 1, m};
    const MatrixRef<float> b = b_rows ? MatrixRef<float>{none, k, n, n, 1} : MatrixRef<float>{none, k, n, 1, k};
    return cpu::detail::panel_gemm_takes(a, b);
  };
  const bool on = cpu::detail::kPanelGemmCompiled;
  CHECK(takes(1088, 64, 192) == on);                // the tiny model's qkv projection
  CHECK(takes(192, 1088, 64, false, true) == on);   // its weight gradient gᵀ·x
  CHECK(takes(788, 3072, 768, true, true) == on);   // ViT-B/16's fc1 input gradient
  CHECK(takes(64, 1088, 1024) == on);               // the tiny model's all-token head
  CHECK(takes(2, 4096, 1024) == on);
  CHECK(takes(300, 4097, 64) == on);                // deeper than kPanelMaxDepth: k cut into blocks
  CHECK(takes(576, 4160, 192, false, true) == on);  // the small model's qkv weight gradient
  CHECK(takes(64, 4096, 1025) == on);               // B packed past 16 MB: k cut into blocks
  CHECK(takes(64, 12480, 1024) == on);              // the small model's all-token head
  CHECK(takes(4, 151296, 1024) == on);              // the B/16 head, forward
  CHECK(takes(97, 1024, 32768, true, true) == on);  // B's blocks packed whole: as wide as they may be
  CHECK(takes(96, 1024, 151296, true, true) == on); // one group of tiles: B packed a panel at a time
  CHECK(takes(64, 1024, 151296, true, true) == on); // the B/16 head's input gradient at batch 64
  CHECK_FALSE(takes(1, 64, 192));                   // a vector product: Eigen's gemv
  CHECK_FALSE(takes(64, 192, 1));
  CHECK_FALSE(takes(97, 1024, 32769, true, true));  // a block of kPanelMinDepthBlock rows would not fit
  const float* none = nullptr;
  CHECK_FALSE(cpu::detail::panel_gemm_takes(MatrixRef<float>{none, 8, 8, 16, 2},  // no unit stride
                                            MatrixRef<float>{none, 8, 8, 8, 1}));
}

TEST_CASE("panel GEMM: which products it computes as their transpose", "[matmul]") {
  if (!cpu::detail::kPanelGemmCompiled) {
    WARN("built without AVX-512: the panel kernel is compiled out, products go to Eigen");
    return;
  }
#if defined(__AVX512F__)
  auto transposes = [](int64_t m, int64_t k, int64_t n, bool a_rows = true, bool b_rows = false) {
    const float* none = nullptr;
    const MatrixRef<float> a = a_rows ? MatrixRef<float>{none, m, k, k, 1} : MatrixRef<float>{none, m, k, 1, m};
    const MatrixRef<float> b = b_rows ? MatrixRef<float>{none, k, n, n, 1} : MatrixRef<float>{none, k, n, 1, k};
    return cpu::detail::panel_gemm_transposes(a, b);
  };
  CHECK(transposes(64, 1088, 1024));               // the tiny model's head, forward at batch 64
  CHECK(transposes(16, 1088, 1024));               // ... at batch 16
  CHECK(transposes(128, 1088, 1024));              // ... at batch 128
  CHECK(transposes(32, 151296, 1024));             // the B/16 head, forward at batch 32
  CHECK(transposes(128, 64, 32768));               // Cᵀ's sums: 16 MB, the most the buffer holds
  CHECK_FALSE(transposes(128, 64, 32769));
  CHECK(transposes(64, 1088, 1024, false));        // A column-major: packed as Cᵀ's B all the same
  CHECK_FALSE(transposes(15, 1088, 1024));         // Cᵀ's tiles would fill part of a vector
  CHECK_FALSE(transposes(129, 1088, 1024));        // packing W is a small share of the product
  CHECK_FALSE(transposes(256, 1088, 1024));        // encoding batches
  CHECK_FALSE(transposes(64, 1024, 1088, true, true));  // B row-major (the head's input gradient)
  CHECK_FALSE(transposes(64, 64, 127));            // C not twice as wide as tall
  CHECK_FALSE(transposes(17, 16, 17));             // an attention head's scores
  CHECK_FALSE(transposes(1088, 64, 192));          // the encoder's forward products
#endif
}
