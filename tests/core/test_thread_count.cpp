// The CPU kernels that split work among threads give the same bits at 1, 2 and 3 threads
// (docs/ops.md, "Threads"): cpu::gemm cutting C into blocks of rows or columns, the reductions'
// partial sums, LayerNorm's weight and bias gradients, and GELU's vectorised erf on a buffer
// that does not start on a vector boundary. Each result is also checked against a double-precision
// loop, so that a block left out or computed twice fails even when every thread count agrees.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <vts/vts.hpp>

#include "../common/thread_count.hpp"

using namespace vts;
using vts_test_common::ThreadCount;

namespace {

constexpr int kThreadCounts[] = {1, 2, 3};

template <class T>
std::vector<T> random_values(int64_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(2.0 * g.next_double() - 1.0);
  return v;
}

// One product through cpu::gemm at the given thread count: A (m × k) and B (k × n) stored row- or
// column-major, C = alpha·A·B + beta·C over a C that starts from fixed values.
template <class T>
std::vector<T> gemm_at(int threads, const std::vector<T>& a, const std::vector<T>& b, int64_t m, int64_t n,
                       int64_t k, bool a_rows, bool b_rows, T alpha, T beta) {
  const MatrixRef<T> ar = a_rows ? MatrixRef<T>{a.data(), m, k, k, 1} : MatrixRef<T>{a.data(), m, k, 1, m};
  const MatrixRef<T> br = b_rows ? MatrixRef<T>{b.data(), k, n, n, 1} : MatrixRef<T>{b.data(), k, n, 1, k};
  std::vector<T> c = random_values<T>(m * n, 99);
  ThreadCount scope(threads);
  cpu::gemm(Cpu{}, ar, br, c.data(), n, alpha, beta);
  return c;
}

template <class T>
void check_gemm(double tolerance) {
  // Shapes cut by rows (m ≥ n) and by columns, lengths that are not multiples of the 48-wide cut
  // step, the ViT-B/16 weight-gradient shape (k = 788), a vector result left whole, and 5 rows
  // times a B of over 32 MB (streamed when B is row-major: row pairs and a single row, k not a
  // multiple of 4, a last block of columns narrower than the others).
  struct Case {
    int64_t m, n, k;
  };
  const Case cases[] = {{788, 200, 64}, {150, 1001, 96}, {97, 97, 300}, {1088, 192, 64}, {300, 96, 788},
                        {2, 5000, 40}, {3000, 1, 200}, {5, 8200, 1030}};
  uint64_t seed = 1;
  for (const Case& s : cases) {
    for (int layout = 0; layout < 4; ++layout) {
      const bool a_rows = layout & 1, b_rows = layout & 2;
      const auto a = random_values<T>(s.m * s.k, seed++), b = random_values<T>(s.k * s.n, seed++);
      const T alpha = layout == 3 ? T(0.5) : T(1), beta = layout == 2 ? T(0.25) : T(0);
      const std::vector<T> one = gemm_at<T>(1, a, b, s.m, s.n, s.k, a_rows, b_rows, alpha, beta);
      const std::vector<T> start = random_values<T>(s.m * s.n, 99);
      double worst = 0;
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          double sum = 0;
          for (int64_t p = 0; p < s.k; ++p)
            sum += static_cast<double>(a[static_cast<size_t>(a_rows ? i * s.k + p : p * s.m + i)]) *
                   static_cast<double>(b[static_cast<size_t>(b_rows ? p * s.n + j : j * s.k + p)]);
          const double want = alpha * sum + beta * static_cast<double>(start[static_cast<size_t>(i * s.n + j)]);
          worst = std::max(worst, std::abs(static_cast<double>(one[static_cast<size_t>(i * s.n + j)]) - want));
        }
      }
      INFO(s.m << "x" << s.k << " times " << s.k << "x" << s.n << ", A " << (a_rows ? "row" : "column")
                << "-major, B " << (b_rows ? "row" : "column") << "-major");
      CHECK(worst < tolerance);
      for (int threads : kThreadCounts) {
        INFO(threads << " threads");
        CHECK((gemm_at<T>(threads, a, b, s.m, s.n, s.k, a_rows, b_rows, alpha, beta) == one));
      }
    }
  }
}

}  // namespace

TEST_CASE("thread count: cpu::gemm gives the same bits at 1, 2 and 3 threads", "[threads]") {
  check_gemm<float>(1e-3);
  check_gemm<double>(1e-10);
}

TEST_CASE("cpu::gemm streams a large row-major B when C has few rows", "[threads]") {
  // What decides the path; check_gemm above checks the streamed results.
  auto streams = [](int64_t m, int64_t k, int64_t n, bool b_rows = true) {
    const float* none = nullptr;
    const MatrixRef<float> a{none, m, k, k, 1};
    const MatrixRef<float> b = b_rows ? MatrixRef<float>{none, k, n, n, 1} : MatrixRef<float>{none, k, n, 1, k};
    return cpu::detail::streams_b(a, b);
  };
  CHECK(streams(4, 1024, 151296));   // the B/16 all-token head's input gradient at batch 4
  CHECK(streams(32, 1024, 151296));  // and at batch 32 (620 MB)
  CHECK_FALSE(streams(33, 1024, 151296));
  CHECK_FALSE(streams(1, 1024, 151296));  // a vector product: Eigen's gemv
  CHECK_FALSE(streams(4, 1024, 151296, false));
  CHECK(streams(16, 1024, 8192));  // exactly 32 MB
  CHECK_FALSE(streams(17, 1024, 8192));
  CHECK_FALSE(streams(4, 1024, 8191));  // just under 32 MB
  CHECK_FALSE(streams(4, 1 << 20, 2048));  // too few columns to share among threads
  const double* none = nullptr;
  CHECK(cpu::detail::streams_b(MatrixRef<double>{none, 4, 1024, 1024, 1},  // 32 MB of doubles
                               MatrixRef<double>{none, 1024, 4096, 4096, 1}));
}

TEST_CASE("thread count: sums over an axis give the same bits at 1, 2 and 3 threads", "[threads]") {
  // [A, R, C] inputs: one long row (C = 1), a few long column sums (C > 1), and many short rows.
  struct Case {
    int64_t A, R, C;
  };
  const Case cases[] = {{1, 1000003, 1}, {3, 200001, 1}, {1, 40001, 24}, {2, 7, 50000}, {5000, 33, 1}, {50, 300, 17}};
  for (const Case& s : cases) {
    const auto in = random_values<float>(s.A * s.R * s.C, 7);
    std::vector<double> want(static_cast<size_t>(s.A * s.C), 0.0);
    for (int64_t a = 0; a < s.A; ++a)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t c = 0; c < s.C; ++c)
          want[static_cast<size_t>(a * s.C + c)] += in[static_cast<size_t>((a * s.R + r) * s.C + c)];
    std::vector<float> one;
    for (int threads : kThreadCounts) {
      std::vector<float> out(static_cast<size_t>(s.A * s.C), -1.0f);
      {
        ThreadCount scope(threads);
        cpu::sum_middle(Cpu{}, in.data(), s.A, s.R, s.C, out.data());
      }
      INFO("[" << s.A << ", " << s.R << ", " << s.C << "], " << threads << " threads");
      if (threads == 1) {
        one = out;
        for (size_t i = 0; i < want.size(); ++i) REQUIRE(std::abs(out[i] - want[i]) < 1e-6 * s.R + 1e-4);
      } else {
        CHECK((out == one));
      }
    }
  }
}

TEST_CASE("thread count: LayerNorm's gradients give the same bits at 1, 2 and 3 threads", "[threads]") {
  for (const auto& [rows, n] : {std::pair<int64_t, int64_t>{788, 768}, {1088, 64}, {5, 40}}) {
    const auto x = random_values<float>(rows * n, 1), w = random_values<float>(n, 2), g = random_values<float>(rows * n, 3);
    std::vector<float> mean(static_cast<size_t>(rows)), rstd(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0, s2 = 0;
      for (int64_t i = 0; i < n; ++i) s += x[static_cast<size_t>(r * n + i)];
      const double mu = s / static_cast<double>(n);
      for (int64_t i = 0; i < n; ++i) s2 += std::pow(x[static_cast<size_t>(r * n + i)] - mu, 2);
      mean[static_cast<size_t>(r)] = static_cast<float>(mu);
      rstd[static_cast<size_t>(r)] = static_cast<float>(1.0 / std::sqrt(s2 / static_cast<double>(n) + 1e-6));
    }
    std::vector<double> want_db(static_cast<size_t>(n), 0.0), want_dw(static_cast<size_t>(n), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) {
        const double gi = g[static_cast<size_t>(r * n + i)];
        want_db[static_cast<size_t>(i)] += gi;
        want_dw[static_cast<size_t>(i)] += gi * (x[static_cast<size_t>(r * n + i)] - mean[static_cast<size_t>(r)]) *
                                           rstd[static_cast<size_t>(r)];
      }
    std::vector<float> dx1, dw1, db1;
    for (int threads : kThreadCounts) {
      std::vector<float> dx(static_cast<size_t>(rows * n)), dw(static_cast<size_t>(n)), db(static_cast<size_t>(n));
      {
        ThreadCount scope(threads);
        cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mean.data(), rstd.data(), g.data(), dx.data(),
                                      dw.data(), db.data(), rows, n);
      }
      INFO(rows << " rows of " << n << ", " << threads << " threads");
      if (threads == 1) {
        for (int64_t i = 0; i < n; ++i) {
          REQUIRE(std::abs(db[static_cast<size_t>(i)] - want_db[static_cast<size_t>(i)]) < 1e-4);
          REQUIRE(std::abs(dw[static_cast<size_t>(i)] - want_dw[static_cast<size_t>(i)]) < 1e-3);
        }
        dx1 = dx, dw1 = dw, db1 = db;
      } else {
        CHECK((dx == dx1));
        CHECK((dw == dw1));
        CHECK((db == db1));
      }
    }
  }
}

// n floats from a 64-byte boundary (as tensors' storage is), plus room to start further in.
struct AlignedFloats {
  std::vector<float> storage;
  float* data;
  explicit AlignedFloats(int64_t n) : storage(static_cast<size_t>(n + 16), 0.0f) {
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    data = storage.data() + (64 - address % 64) % 64 / sizeof(float);
  }
};

TEST_CASE("thread count: GELU gives the same bits at 1, 2 and 3 threads, from any starting element", "[threads]") {
  // Eigen computes the elements before the output's first 64-byte boundary with its scalar
  // functions, so the same element can round differently in another buffer: the buffers here
  // are aligned as the allocator's are, and the output starts `shift` elements past a boundary.
  const int64_t n = 200003;
  AlignedFloats x(n + 16), g(n + 16);
  const auto xs = random_values<float>(n + 16, 5), gs = random_values<float>(n + 16, 6);
  std::copy(xs.begin(), xs.end(), x.data);
  std::copy(gs.begin(), gs.end(), g.data);
  for (int64_t shift : {0, 1, 3, 15}) {
    std::vector<float> y1, dx1;
    for (int threads : kThreadCounts) {
      AlignedFloats ya(n + 16), dxa(n + 16);
      {
        ThreadCount scope(threads);
        cpu::gelu_forward(Cpu{}, x.data + shift, ya.data + shift, n);
        cpu::gelu_backward(Cpu{}, x.data + shift, g.data + shift, dxa.data + shift, n);
      }
      const std::vector<float> y(ya.data, ya.data + n + 16), dx(dxa.data, dxa.data + n + 16);
      INFO("starting " << shift << " elements in, " << threads << " threads");
      if (threads == 1) {
        for (int64_t i = 0; i < n; i += 997) {
          const double xi = x.data[shift + i];
          REQUIRE(std::abs(y[static_cast<size_t>(shift + i)] - 0.5 * xi * (1 + std::erf(xi / std::sqrt(2.0)))) < 1e-6);
        }
        y1 = y, dx1 = dx;
      } else {
        CHECK((y == y1));
        CHECK((dx == dx1));
      }
    }
  }
}
