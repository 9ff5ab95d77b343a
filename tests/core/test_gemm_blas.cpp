// vts::cpu::gemm through OpenBLAS (built with vts::blas): every operand layout the ops hand it,
// against a double-precision loop, through gemm and through the CBLAS call itself (an AVX-512
// build gives gemm's float matrix products to its own kernel, panel_gemm.hpp, before OpenBLAS);
// operands CBLAS cannot take falling back to Eigen; calls from inside OpenMP parallel regions;
// and that the library linked is OpenBLAS's OpenMP build.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <vts/vts.hpp>

#if !defined(VTS_WITH_OPENBLAS)
#error "test_gemm_blas.cpp is built with vts::blas (VTS_WITH_OPENBLAS)"
#endif

using namespace vts;

namespace {

// A (rows × cols) matrix stored row- or column-major with `pad` unused elements after each row
// (column), the values a deterministic function of (i, j).
template <class T>
struct Stored {
  std::vector<T> data;
  MatrixRef<T> ref;
  Stored(int64_t rows, int64_t cols, bool row_major, int64_t pad, int salt) {
    const int64_t ld = (row_major ? cols : rows) + pad;
    data.assign(static_cast<size_t>(ld * (row_major ? rows : cols) + 1), T(-777));  // padding poisoned
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        data[static_cast<size_t>(row_major ? i * ld + j : j * ld + i)] = value(i, j, salt);
    ref = row_major ? MatrixRef<T>{data.data(), rows, cols, ld, 1} : MatrixRef<T>{data.data(), rows, cols, 1, ld};
  }
  static T value(int64_t i, int64_t j, int salt) {
    return static_cast<T>(static_cast<double>((i * 7 + j * 13 + salt * 5) % 17) / 8.0 - 1.0);
  }
  double at(int64_t i, int64_t j) const { return static_cast<double>(ref.data[i * ref.row_stride + j * ref.col_stride]); }
};

template <class T>
void check_layouts(double tolerance) {
  const int64_t shapes[][3] = {{5, 7, 3}, {1, 9, 4}, {6, 1, 5}, {4, 8, 1}, {1, 1, 1}, {33, 70, 65}, {2, 300, 3}};
  for (const auto& s : shapes) {
    const int64_t M = s[0], K = s[1], N = s[2];
    for (bool a_rows : {true, false})
      for (bool b_rows : {true, false})
        for (int64_t pad : {0, 3})
          for (const auto& [alpha, beta] : {std::pair<double, double>{1, 0}, {0.5, 0}, {1, 1}, {-2, 0.25}}) {
            INFO("M " << M << " K " << K << " N " << N << " A row-major " << a_rows << " B row-major " << b_rows
                      << " pad " << pad << " alpha " << alpha << " beta " << beta);
            const Stored<T> a(M, K, a_rows, pad, 1), b(K, N, b_rows, pad, 2);
            const int64_t ldc = N + pad;
            for (bool direct : {false, true}) {
              INFO((direct ? "cblas_?gemm" : "cpu::gemm"));
              // beta = 0 must not read C: NaN there stays out of the result.
              std::vector<T> c(static_cast<size_t>(M * ldc), beta == 0 ? T(NAN) : T(0.5));
              if (direct) {
                REQUIRE(cpu::detail::blas_gemm(a.ref, b.ref, c.data(), ldc, static_cast<T>(alpha), static_cast<T>(beta)));
              } else {
                cpu::gemm(Cpu{}, a.ref, b.ref, c.data(), ldc, static_cast<T>(alpha), static_cast<T>(beta));
              }
              double worst = 0;
              for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                  double ref = beta == 0 ? 0.0 : beta * 0.5;
                  for (int64_t k = 0; k < K; ++k) ref += alpha * a.at(i, k) * b.at(k, j);
                  worst = std::max(worst, std::abs(static_cast<double>(c[static_cast<size_t>(i * ldc + j)]) - ref));
                }
              CHECK(worst <= tolerance);
            }
          }
  }
}

}  // namespace

TEST_CASE("cpu::gemm through OpenBLAS: every layout, alpha and beta, against loops", "[blas]") {
  STATIC_REQUIRE(cpu::gemm_uses_openblas());
  check_layouts<float>(1e-4);
  check_layouts<double>(1e-12);
}

TEST_CASE("cpu::gemm through OpenBLAS: operands CBLAS cannot take go through Eigen", "[blas]") {
  // An expanded row (row stride 0) has no valid CBLAS leading dimension.
  const std::vector<float> row{1, 2, 3};
  const MatrixRef<float> expanded{row.data(), 4, 3, 0, 1};
  const std::vector<float> b{1, 0, 0, 1, 1, 1};  // 3 × 2
  std::vector<float> c(8, NAN);
  cpu::gemm(Cpu{}, expanded, MatrixRef<float>{b.data(), 3, 2, 2, 1}, c.data(), 2, 1.0f, 0.0f);
  for (int i = 0; i < 4; ++i) {
    CHECK(c[size_t(2 * i)] == 4.0f);  // 1 + 3
    CHECK(c[size_t(2 * i + 1)] == 5.0f);  // 2 + 3
  }
}

TEST_CASE("cpu::gemm through OpenBLAS inside parallel regions, and the OpenMP build linked", "[blas]") {
  // 2 = OpenBLAS's OpenMP build (0 sequential, 1 its own pthreads): the only one that neither
  // oversubscribes the cores nor fights OpenMP's spinning threads.
  CHECK(openblas_get_parallel() == 2);
  // Per-task GEMMs from OpenMP threads, as the CPU attention's per-head products run.
  constexpr int64_t tasks = 16, n = 48;
  const Stored<float> a(n, n, true, 0, 3), b(n, n, false, 0, 4);
  std::vector<float> out(static_cast<size_t>(tasks * n * n), NAN);
  cpu::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      cpu::gemm(Cpu{}, a.ref, b.ref, out.data() + t * n * n, n, static_cast<float>(t + 1), 0.0f);
  });
  double worst = 0;
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0;
        for (int64_t k = 0; k < n; ++k) ref += a.at(i, k) * b.at(k, j);
        worst = std::max(worst, std::abs(out[static_cast<size_t>((t * n + i) * n + j)] - (t + 1) * ref));
      }
  CHECK(worst <= 1e-3);
}
