// Gradient checks for matmul and linear, and the backend GEMM calls linear makes. Compiled into
// vts_test_core and, when OpenBLAS's OpenMP build is found, into vts_test_gemm_blas too, so that
// both GEMM paths of vts::cpu::gemm (Eigen, and OpenBLAS under -DVTS_BLAS=ON) pass the same checks.
#include "test_util.hpp"

using namespace vts;
using namespace vts_test;
using Catch::Matchers::Contains;

TEST_CASE("grad: matmul", "[grad][matmul]") {
  auto mm = [](auto& in) { return matmul(in[0], in[1]); };
  SECTION("2-D") { check_grad(mm, {uniform({3, 4}, 31), uniform({4, 5}, 32)}); }
  SECTION("batched") { check_grad(mm, {uniform({2, 3, 4}, 33), uniform({2, 4, 5}, 34)}); }
  SECTION("broadcast batch") {
    check_grad(mm, {uniform({2, 1, 3, 4}, 35), uniform({3, 4, 2}, 36)});
    check_grad(mm, {uniform({3, 4}, 37), uniform({2, 4, 5}, 38)});
    check_grad(mm, {uniform({2, 3, 4}, 39), uniform({4, 2}, 40)});
  }
  SECTION("transposed operands") {
    check_grad([](auto& in) { return matmul(in[0].t(), in[1].t()); }, {uniform({4, 3}, 41), uniform({5, 4}, 42)});
    check_grad([](auto& in) { return matmul(in[0].transpose(-2, -1), in[1]); },
               {uniform({2, 4, 3}, 43), uniform({2, 4, 5}, 44)});
    check_grad([](auto& in) { return matmul(in[0].permute({1, 0, 2}), in[1].transpose(1, 2)); },
               {uniform({3, 2, 4}, 45), uniform({2, 5, 4}, 46)});
  }
  SECTION("strided and expanded operands") {
    // A stepped column slice has no unit stride and must be copied before the GEMM; an expanded
    // row has row stride 0.
    check_grad([](auto& in) { return matmul(in[0].slice(1, 0, 8, 2), in[1]); }, {uniform({3, 8}, 47), uniform({4, 2}, 48)});
    check_grad([](auto& in) { return matmul(in[0].expand({3, 4}), in[1]); }, {uniform({1, 4}, 49), uniform({4, 2}, 50)});
    check_grad([](auto& in) { return matmul(in[0], in[1].expand({2, 4, 3})); }, {uniform({2, 3, 4}, 51), uniform({4, 3}, 52)});
  }
  SECTION("gradient arriving through a broadcast") {
    // sum over rows hands matmul's backward a gradient with row stride 0.
    check_grad([](auto& in) { return mul(sum(matmul(in[0], in[1]), {0}, true), 2.0); },
               {uniform({3, 4}, 53), uniform({4, 5}, 54)});
  }
}

TEST_CASE("grad: linear", "[grad][matmul]") {
  const Td w = uniform({3, 4}, 61), b = uniform({3}, 62);
  check_grad([](auto& in) { return linear(in[0], in[1], in[2]); }, {uniform({5, 4}, 63), w, b});
  check_grad([](auto& in) { return linear(in[0], in[1]); }, {uniform({5, 4}, 64), w});
  check_grad([](auto& in) { return linear(in[0], in[1], in[2]); }, {uniform({2, 3, 4}, 65), w, b});
  check_grad([](auto& in) { return linear(in[0], in[1]); }, {uniform({2, 3, 4}, 66), w});
  // Non-contiguous input and a transposed weight view.
  check_grad([](auto& in) { return linear(in[0].transpose(0, 1), in[1].t(), in[2]); },
             {uniform({3, 2, 4}, 67), uniform({4, 3}, 68), b});
  // One element of x: [4] in, [3] out.
  check_grad([](auto& in) { return linear(in[0], in[1], in[2]); }, {uniform({4}, 69), w, b});
  // A frozen weight (a captured constant): the bias gradient without the weight gradient's GEMM
  // that otherwise carries it; and a strided bias view.
  check_grad([&](auto& in) { return linear(in[0], w, in[1]); }, {uniform({5, 4}, 70), b});
  check_grad([](auto& in) { return linear(in[0], in[1], in[2].slice(0, 0, 6, 2)); },
             {uniform({5, 4}, 160), w, uniform({6}, 161)});
}

// Backward skips the products an operand without a gradient does not need: each operand alone,
// the other a captured constant. For linear that is the first layer of a network, whose input (the
// images' patches) needs no gradient, and a frozen layer, where only the input's gradient is wanted.
TEST_CASE("grad: matmul and linear with constant operands", "[grad][matmul]") {
  const Td a = uniform({2, 3, 4}, 81), b = uniform({4, 5}, 82);
  check_grad([&](auto& in) { return matmul(in[0], b); }, {uniform({2, 3, 4}, 83)});
  check_grad([&](auto& in) { return matmul(a, in[0]); }, {uniform({4, 5}, 84)});  // sum_to over the batch
  const Td x = uniform({2, 5, 4}, 85), w = uniform({3, 4}, 86), bias = uniform({3}, 87);
  check_grad([&](auto& in) { return linear(x, in[0], in[1]); }, {uniform({3, 4}, 88), uniform({3}, 89)});
  check_grad([&](auto& in) { return linear(x, in[0]); }, {uniform({3, 4}, 90)});
  check_grad([&](auto& in) { return linear(in[0], w, bias); }, {uniform({2, 5, 4}, 91)});
  check_grad([&](auto& in) { return linear(in[0].transpose(0, 1), w); }, {uniform({5, 2, 4}, 92)});
}

// Zero-size dims are legal shapes: an empty batch, or an input with no features (where
// linear used to divide by its zero feature count and kill the process with SIGFPE).
TEST_CASE("linear and matmul with zero-size dimensions", "[matmul]") {
  SECTION("no input features: the output is the bias, the weight gradient is empty") {
    Td x = Td::zeros({4, 0}), w = Td::zeros({3, 0}), b = Td::from_vector({1, 2, 3});
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    const Td y = linear(x, w, b);
    REQUIRE(y.shape() == Shape{4, 3});
    check_values(y.to_vector(), {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
    sum(y).backward();
    CHECK(x.grad().shape() == Shape{4, 0});
    CHECK(w.grad().shape() == Shape{3, 0});
    check_values(b.grad().to_vector(), {4, 4, 4});
  }
  SECTION("an empty batch") {
    Td w = uniform({3, 5}, 71);
    w.requires_grad_();
    const Td y = linear(Td::zeros({0, 5}), w);
    CHECK(y.shape() == Shape{0, 3});
    sum(y).backward();
    check_values(w.grad().to_vector(), std::vector<double>(15, 0.0));
  }
  SECTION("matmul with an empty inner dimension is all zeros") {
    check_values(matmul(Td::ones({2, 0}), Td::ones({0, 3})).to_vector(), std::vector<double>(6, 0.0));
  }
}

// The backend calls linear makes: C = A·B + bias in every row, and C = A·B with A's row sums, for
// A stored row- and column-major (row_sum_shape), against plain loops; a matrix with gaps
// between its rows is refused with its strides named.
TEST_CASE("cpu::gemm_bias and cpu::gemm_row_sums against loops", "[matmul]") {
  constexpr int64_t M = 5, K = 7, N = 3;
  std::vector<float> a(M * K), b(K * N), bias(N);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 11) - 4.5f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = static_cast<float>(i) + 0.5f;
  for (bool row_major : {true, false}) {
    INFO("A row-major " << row_major);
    // The same matrix A(i, k) = a[i*K + k] in either storage.
    std::vector<float> stored(a.size());
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) stored[size_t(row_major ? i * K + k : k * M + i)] = a[size_t(i * K + k)];
    const MatrixRef<float> ar = row_major ? MatrixRef<float>{stored.data(), M, K, K, 1}
                                          : MatrixRef<float>{stored.data(), M, K, 1, M};
    const MatrixRef<float> br{b.data(), K, N, N, 1};
    std::vector<float> c(M * N, NAN), c2(M * N, NAN), sums(M, NAN);
    vts::cpu::gemm_bias(Cpu{}, ar, br, bias.data(), c.data(), N);
    vts::cpu::gemm_row_sums(Cpu{}, ar, br, c2.data(), N, sums.data());
    for (int64_t i = 0; i < M; ++i) {
      double row = 0;
      for (int64_t k = 0; k < K; ++k) row += a[size_t(i * K + k)];
      CHECK(sums[size_t(i)] == Approx(row).epsilon(1e-6));
      for (int64_t j = 0; j < N; ++j) {
        double dot = 0;
        for (int64_t k = 0; k < K; ++k) dot += double(a[size_t(i * K + k)]) * b[size_t(k * N + j)];
        CHECK(c2[size_t(i * N + j)] == Approx(dot).margin(1e-5));
        CHECK(c[size_t(i * N + j)] == Approx(dot + bias[size_t(j)]).margin(1e-5));
      }
    }
  }
  std::vector<float> c(M * N), sums(M);
  const MatrixRef<float> gapped{a.data(), M, K - 2, K, 1};  // rows of K - 2 inside rows of K
  CHECK_THROWS_WITH(vts::cpu::gemm_row_sums(Cpu{}, gapped, MatrixRef<float>{b.data(), K - 2, N, N, 1}, c.data(), N,
                                            sums.data()),
                    Contains("strides 7, 1") && Contains("densely"));
}
