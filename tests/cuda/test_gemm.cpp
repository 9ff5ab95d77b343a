// cuBLASLt GEMM with the MatrixRef convention, against vts::cpu::gemm (Eigen).
#include "cuda_test_util.hpp"
#include "vts/backend/cpu/gemm.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/matmul.hpp"
#include "vts/ops/reduce.hpp"
#include "vts/ops/view.hpp"

using namespace vts;
using namespace vts::cuda::test;

namespace {
struct Layout {
  bool a_row_major, b_row_major;
  int64_t pad;  // extra leading-dimension elements
};

// A MatrixRef of rows × cols at `data` in the given layout with leading-dimension padding.
template <class T>
MatrixRef<T> ref_of(const T* data, int64_t rows, int64_t cols, bool row_major, int64_t pad) {
  return row_major ? MatrixRef<T>{data, rows, cols, cols + pad, 1} : MatrixRef<T>{data, rows, cols, 1, rows + pad};
}
}  // namespace

TEST_CASE("gemm fp32 (strict and TF32), all operand layouts, alpha and beta", "[gemm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  struct Shape3 {
    int64_t M, K, N;
  };
  for (const Shape3& s : {Shape3{788, 768, 2304}, Shape3{197, 64, 197}, Shape3{33, 17, 5}, Shape3{1, 300, 7}}) {
    for (const Layout& l : {Layout{true, true, 0}, Layout{false, true, 3}, Layout{true, false, 0}, Layout{false, false, 5}}) {
      INFO("M " << s.M << " K " << s.K << " N " << s.N << " A row-major " << l.a_row_major << " B row-major "
                << l.b_row_major << " pad " << l.pad);
      const int64_t lda = (l.a_row_major ? s.K : s.M) + l.pad, ldb = (l.b_row_major ? s.N : s.K) + l.pad;
      const auto a = rng.normal(static_cast<size_t>((l.a_row_major ? s.M : s.K) * lda));
      const auto b = rng.normal(static_cast<size_t>((l.b_row_major ? s.K : s.N) * ldb));
      const int64_t ldc = s.N + 2;
      const auto c0 = rng.normal(static_cast<size_t>(s.M * ldc));
      for (float beta : {0.0f, 0.5f}) {
        for (cuda::Fp32Gemm mode : {cuda::Fp32Gemm::full, cuda::Fp32Gemm::tf32, cuda::Fp32Gemm::bf16}) {
          INFO("beta " << beta << " fp32 GEMM mode " << cuda::to_string(mode));
          std::vector<float> ref = c0;
          cpu::gemm(Cpu{}, ref_of(a.data(), s.M, s.K, l.a_row_major, l.pad),
                    ref_of(b.data(), s.K, s.N, l.b_row_major, l.pad), ref.data(), ldc, 1.25f, beta);
          Buf<float> da(a), db(b), dc(c0);
          if (beta == 0.0f) dc.poison();  // beta = 0 must not read C
          cuda::set_fp32_gemm(mode);
          cuda::gemm(Cuda{}, ref_of<float>(da.data(), s.M, s.K, l.a_row_major, l.pad),
                     ref_of<float>(db.data(), s.K, s.N, l.b_row_major, l.pad), dc.data(), ldc, 1.25f, beta);
          auto got = dc.download();
          // Compare the M × N region only (the padding columns keep their poison or old values).
          std::vector<float> g2, r2;
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < s.N; ++j) {
              g2.push_back(got[static_cast<size_t>(i * ldc + j)]);
              r2.push_back(ref[static_cast<size_t>(i * ldc + j)]);
            }
          // TF32 rounds operands to 10 mantissa bits (≈ 1e-3 relative), bf16 to 7 (≈ 4e-3 on random
          // operands); fp32 strict: float rounding only.
          const double tol = mode == cuda::Fp32Gemm::full ? kTolF32 : mode == cuda::Fp32Gemm::tf32 ? 5e-3 : 2e-2;
          CHECK(rel_err(g2, r2) < tol);
        }
      }
    }
  }
  cuda::set_tf32(true);
}

TEST_CASE("gemm bf16 operands, bf16 and fp32 outputs", "[gemm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const int64_t M = 394, K = 768, N = 3072;
  for (const Layout& l : {Layout{true, true, 0}, Layout{true, false, 0}, Layout{false, true, 8}}) {
    INFO("A row-major " << l.a_row_major << " B row-major " << l.b_row_major);
    const int64_t lda = (l.a_row_major ? K : M) + l.pad, ldb = (l.b_row_major ? N : K) + l.pad;
    const auto a = round_bf16(rng.normal(static_cast<size_t>((l.a_row_major ? M : K) * lda)));
    const auto b = round_bf16(rng.normal(static_cast<size_t>((l.b_row_major ? K : N) * ldb)));
    std::vector<float> ref(static_cast<size_t>(M * N));
    cpu::gemm(Cpu{}, ref_of(a.data(), M, K, l.a_row_major, l.pad), ref_of(b.data(), K, N, l.b_row_major, l.pad),
              ref.data(), N, 1.0f, 0.0f);
    auto da = bf16_buf(a), db = bf16_buf(b);
    Buf<bf16> dc(ref.size());
    Buf<float> dcf(ref.size());
    dc.poison();
    dcf.poison();
    const auto ra = ref_of<bf16>(da.data(), M, K, l.a_row_major, l.pad);
    const auto rb = ref_of<bf16>(db.data(), K, N, l.b_row_major, l.pad);
    cuda::gemm(Cuda{}, ra, rb, dc.data(), N, 1.0f, 0.0f);
    cuda::gemm(Cuda{}, ra, rb, dcf.data(), N, 1.0f, 0.0f);
    CHECK(rel_err(dc.download(), ref) < kTolBf16);
    CHECK(rel_err(dcf.download(), ref) < 1e-4);  // exact products, fp32 accumulation and output
  }
}

// The linear layer's epilogue GEMMs against the CPU's separate passes (cpu::gemm_bias seeds C with
// the bias; cpu::gemm_row_sums sums with sum_middle): C and the sums are poisoned first (neither is
// read); bias and sums vectors both 16-byte aligned and one element off (cuBLASLt's heuristic keys
// on the vector's alignment); A and B in both layouts. The count of calls that fell back to the
// separate passes is printed: it tells whether cuBLASLt took the epilogues on this card.
namespace {
// Returns the number of epilogue calls it made.
template <class T>
int check_epilogues(Rng& rng, cuda::Fp32Gemm mode, double tol) {
  struct Shape3 {
    int64_t M, K, N;
  };
  cuda::set_fp32_gemm(mode);
  int calls = 0;
  for (const Shape3& s : {Shape3{394, 768, 2304}, Shape3{64, 1088, 1024}, Shape3{33, 17, 5}, Shape3{1, 300, 7}}) {
    for (const Layout& l : {Layout{true, false, 0}, Layout{false, true, 0}, Layout{true, true, 0}}) {
      for (int64_t offset : {0, 1}) {
        INFO("dtype " << (std::is_same_v<T, bf16> ? "bf16" : cuda::to_string(mode)) << " M " << s.M << " K " << s.K
                      << " N " << s.N << " A row-major " << l.a_row_major << " B row-major " << l.b_row_major
                      << " vector offset " << offset);
        auto a = rng.normal(static_cast<size_t>(s.M * s.K)), b = rng.normal(static_cast<size_t>(s.K * s.N));
        auto bias = rng.normal(static_cast<size_t>(s.N + offset));
        if constexpr (std::is_same_v<T, bf16>) {
          a = round_bf16(a);
          b = round_bf16(b);
          bias = round_bf16(bias);
        }
        const auto ra = ref_of(a.data(), s.M, s.K, l.a_row_major, 0);
        const auto rb = ref_of(b.data(), s.K, s.N, l.b_row_major, 0);
        std::vector<float> ref_c(static_cast<size_t>(s.M * s.N)), ref_sums(static_cast<size_t>(s.M));
        cpu::gemm_bias(Cpu{}, ra, rb, bias.data() + offset, ref_c.data(), s.N);
        auto upload = [](const std::vector<float>& v) {
          if constexpr (std::is_same_v<T, bf16>) return bf16_buf(v);
          else return Buf<float>(v);
        };
        auto da = upload(a), db = upload(b), dbias = upload(bias);
        Buf<T> dc(ref_c.size()), dsums(ref_sums.size() + offset);
        dc.poison();
        cuda::gemm_bias(Cuda{}, ref_of<T>(da.data(), s.M, s.K, l.a_row_major, 0),
                        ref_of<T>(db.data(), s.K, s.N, l.b_row_major, 0), dbias.data() + offset, dc.data(), s.N);
        CHECK(rel_err(dc.download(), ref_c) < tol);

        cpu::gemm_row_sums(Cpu{}, ra, rb, ref_c.data(), s.N, ref_sums.data());
        dc.poison();
        dsums.poison();
        cuda::gemm_row_sums(Cuda{}, ref_of<T>(da.data(), s.M, s.K, l.a_row_major, 0),
                            ref_of<T>(db.data(), s.K, s.N, l.b_row_major, 0), dc.data(), s.N, dsums.data() + offset);
        CHECK(rel_err(dc.download(), ref_c) < tol);
        const auto sums = dsums.download();
        const std::vector<T> got(sums.begin() + offset, sums.end());
        CHECK(rel_err(got, ref_sums) < tol);
        if (offset == 1) CHECK(std::isnan(static_cast<float>(sums[0])));  // nothing written before the vector
        calls += 2;
      }
    }
  }
  return calls;
}
}  // namespace

TEST_CASE("gemm_bias and gemm_row_sums: cuBLASLt's bias and bias-gradient epilogues", "[gemm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const int64_t fallbacks_before = cuda::gemm_epilogue_fallbacks();
  int calls = check_epilogues<float>(rng, cuda::Fp32Gemm::full, kTolF32);
  calls += check_epilogues<float>(rng, cuda::Fp32Gemm::tf32, 5e-3);
  calls += check_epilogues<float>(rng, cuda::Fp32Gemm::bf16, 2e-2);
  calls += check_epilogues<bf16>(rng, cuda::Fp32Gemm::tf32, kTolBf16);
  cuda::set_tf32(true);
  WARN("gemm_bias / gemm_row_sums calls that fell back to separate passes: "
       << cuda::gemm_epilogue_fallbacks() - fallbacks_before << " of " << calls);
}

// matmul with batch axes on CUDA: evenly spaced batches (contiguous, transposed views, a broadcast
// operand) go through one gemm_strided_batched call, a permuted view is copied to its contiguous
// layout first, and a partial broadcast ([B, 1, M, K] against [B, H, K, N]) runs product by
// product. Values and both gradients against the CPU op, TF32 off.
TEST_CASE("batched matmul through the op layer: strided-batched and per-product paths", "[gemm]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const bool tf32_was = cuda::tf32();
  cuda::set_tf32(false);
  constexpr int64_t B = 3, H = 4, M = 50, K = 16, N = 50;
  auto both = [&](const std::vector<float>& v, const vts::Shape& s) {
    Tensor<float, Cpu> c = Tensor<float, Cpu>::from_vector(v, s);
    Tensor<float, Cuda> g = Tensor<float, Cuda>::from_vector(v, s);
    c.requires_grad_();
    g.requires_grad_();
    return std::pair{c, g};
  };
  struct Case {
    const char* name;
    vts::Shape a, b;
    bool transpose_b, permute_a;
  };
  for (const Case& c : {Case{"contiguous batch", {B, H, M, K}, {B, H, K, N}, false, false},
                        Case{"transposed B view", {B, H, M, K}, {B, H, N, K}, true, false},
                        Case{"broadcast B", {B, H, M, K}, {K, N}, false, false},
                        Case{"permuted A view (uneven batch offsets)", {B, M, H, K}, {B, H, K, N}, false, true},
                        Case{"partial broadcast of A", {B, 1, M, K}, {B, H, K, N}, false, false}}) {
    INFO(c.name);
    auto [a_cpu, a_gpu] = both(rng.normal(static_cast<size_t>(c.a.numel())), c.a);
    auto [b_cpu, b_gpu] = both(rng.normal(static_cast<size_t>(c.b.numel())), c.b);
    auto run = [&](auto a, auto b) {
      if (c.permute_a) a = a.permute({0, 2, 1, 3});
      if (c.transpose_b) b = b.transpose(-2, -1);
      return matmul(a, b);
    };
    const auto y_cpu = run(a_cpu, b_cpu);
    const auto y_gpu = run(a_gpu, b_gpu);
    REQUIRE(y_gpu.shape() == y_cpu.shape());
    CHECK(rel_err(y_gpu.to_vector(), y_cpu.to_vector()) < kTolF32);
    const auto r = rng.normal(static_cast<size_t>(y_cpu.numel()));
    sum(mul(y_cpu, Tensor<float, Cpu>::from_vector(r, y_cpu.shape()))).backward();
    sum(mul(y_gpu, Tensor<float, Cuda>::from_vector(r, y_gpu.shape()))).backward();
    CHECK(rel_err(a_gpu.grad().to_vector(), a_cpu.grad().to_vector()) < kTolF32);
    CHECK(rel_err(b_gpu.grad().to_vector(), b_cpu.grad().to_vector()) < kTolF32);
  }
  cuda::set_tf32(tf32_was);
}
