// CPU op benchmark: VTS ops at the shapes a ViT-B/16 (batch 4) and the tiny CPU config use, next
// to the same GEMM in plain Eigen and in OpenBLAS (cblas_sgemm, called directly). The peer for the
// fused ops (layer norm, softmax, attention, GELU) is PyTorch: benchmarks/ops/pytorch_ops.py runs
// the same cases and prints the same JSON.
//
//   vts_bench_ops [--threads N] [--reps N] [--warmup N] [--filter SUBSTRING]
//
// One JSON line per (case, implementation):
//   {"bench":"ops","case":...,"impl":"vts"|"eigen"|"openblas","shape":...,"threads":N,"reps":N,
//    "median_ms":...,"min_ms":...,"metric":"gflop_s"|"gb_s","value":...}
// Work per case is counted here, once, and the Python peer counts it the same way:
//   GEMM M×K·K×N: 2MNK flops.
//   attention (B,H,N,d): forward 4·BHN²d flops (QKᵀ and PV); forward+backward 12·BHN²d (backward
//     = four more products of the same size; a recomputing kernel does a fifth, which is not
//     counted, so both implementations are credited with the same work).
//   layer norm, softmax, GELU, dropout: bytes of the tensors that must cross memory once, in fp32:
//     forward reads x and writes y (2 tensors); backward reads x (or y) and dy and writes dx (3).
//   Adam step on one n-element parameter: reads θ, g, m, v and writes θ, m, v (7 tensors).
//   initialisation (nn.Linear's default, U(±1/√fan_in) for the weight): writes the weight (1 tensor).
// The median over --reps timed runs (after --warmup untimed ones) is reported; min for reference.
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#ifdef VTS_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "../bench_args.hpp"
#include "vts/backend/cpu/parallel.hpp"
#include "vts/nn/init.hpp"
#include "vts/optim/adam.hpp"
#include "vts/vts.hpp"

namespace {

using Tensor = vts::Tensor<float>;
using vts::Shape;

struct Options {
  int threads = 0;  // 0: all (OMP_NUM_THREADS or the core count)
  int reps = 20;
  int warmup = 3;
  std::string filter;
};

// Every case name asked about, and the lines printed: a --filter that matches no case is an error
// (it used to print nothing and exit 0, which a script reads as an empty, successful run).
std::vector<std::string> g_case_names;
int g_reported = 0;

struct Timing {
  double median_ms, min_ms;
};

Timing time_it(const Options& o, const std::function<void()>& run) {
  for (int i = 0; i < o.warmup; ++i) run();
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(o.reps));
  for (int i = 0; i < o.reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {vts_bench::median_of_sorted(ms), ms.front()};
}

// Work of one run: flops (reported as GFLOP/s) or bytes (GB/s).
struct Work {
  double amount;
  bool flops;
};

void report(const Options& o, int threads, const std::string& name, const std::string& impl,
            const std::string& shape, const Work& w, const Timing& t) {
  const double per_s = w.amount / (t.median_ms * 1e-3) * 1e-9;
  std::printf(
      "{\"bench\":\"ops\",\"case\":\"%s\",\"impl\":\"%s\",\"shape\":\"%s\",\"threads\":%d,\"reps\":%d,"
      "\"median_ms\":%.4f,\"min_ms\":%.4f,\"metric\":\"%s\",\"value\":%.3f}\n",
      name.c_str(), impl.c_str(), shape.c_str(), threads, o.reps, t.median_ms, t.min_ms, w.flops ? "gflop_s" : "gb_s",
      per_s);
  std::fflush(stdout);
  ++g_reported;
}

vts::Generator& gen() {
  static vts::Generator g(20240601);
  return g;
}

Tensor random(const Shape& s, bool requires_grad = false) {
  Tensor t = vts::nn::init::uniform_(Tensor::empty(s), -1.0, 1.0, gen());
  if (requires_grad) t.requires_grad_();
  return t;
}

std::string dims(std::initializer_list<int64_t> d, const char* sep = "x") {
  std::string s;
  for (int64_t v : d) {
    if (!s.empty()) s += sep;
    s += std::to_string(v);
  }
  return s;
}

// --filter matches a substring of the full case name (e.g. "gemm", "attention_tiny_fwd_bwd").
bool wanted(const Options& o, const std::string& name) {
  g_case_names.push_back(name);
  return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

// Keeps the optimizer from dropping a result that nothing reads.
volatile float g_sink;
void consume(const Tensor& t) { g_sink = t.data()[0]; }

// ---- GEMM ----------------------------------------------------------------------------------------
// C = A·B with A (M × K) and B (K × N) row-major, and as a linear layer x·Wᵀ + b. With
// `a_transposed` A is the transpose of a row-major K × M matrix — a weight gradient gᵀ·x — and the
// layer form is left out.
void bench_gemm(const Options& o, int threads, const std::string& name, int64_t M, int64_t K, int64_t N,
                bool a_transposed = false) {
  if (!wanted(o, name)) return;
  const Tensor a = a_transposed ? random(Shape{K, M}).t() : random(Shape{M, K}), b = random(Shape{K, N});
  const std::string shape = dims({M, K, N});
  const Work work{2.0 * double(M) * double(N) * double(K), true};
  vts::NoGradGuard no_grad;

  report(o, threads, name, "vts", shape, work, time_it(o, [&] { consume(vts::matmul(a, b)); }));
  if (!a_transposed) {
    const Tensor w = random(Shape{N, K}), bias = random(Shape{N});
    report(o, threads, name, "vts_linear", shape, work, time_it(o, [&] { consume(vts::linear(a, w, bias)); }));
  }

  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  Eigen::Map<const RowMajor> bm(b.data(), K, N);
  RowMajor cm(M, N);
  auto eigen_product = [&](const auto& am) {
    report(o, threads, name, "eigen", shape, work, time_it(o, [&] {
             cm.noalias() = am * bm;
             g_sink = cm(0, 0);
           }));
  };
  if (a_transposed) eigen_product(Eigen::Map<const ColMajor>(a.data(), M, K));
  else eigen_product(Eigen::Map<const RowMajor>(a.data(), M, K));

#ifdef VTS_BENCH_HAVE_OPENBLAS
  std::vector<float> c(static_cast<size_t>(M * N));
  report(o, threads, name, "openblas", shape, work, time_it(o, [&] {
           cblas_sgemm(CblasRowMajor, a_transposed ? CblasTrans : CblasNoTrans, CblasNoTrans, static_cast<int>(M),
                       static_cast<int>(N), static_cast<int>(K), 1.0f, a.data(), static_cast<int>(a_transposed ? M : K),
                       b.data(), static_cast<int>(N), 0.0f, c.data(), static_cast<int>(N));
           g_sink = c[0];
         }));
#endif
}

// ---- fused ops: forward alone, and forward + backward through the autograd ----------------------
// `forward(inputs)` builds the op; the backward run seeds it with a fixed random gradient and
// drops the leaves' gradients before each repetition so every run allocates and writes them anew.
void bench_fwd_bwd(const Options& o, int threads, const std::string& name, const std::string& shape,
                   std::vector<Tensor> inputs, const std::function<Tensor(const std::vector<Tensor>&)>& forward,
                   const Work& fwd_work, const Work& fwd_bwd_work) {
  if (wanted(o, name + "_fwd")) {
    vts::NoGradGuard no_grad;
    report(o, threads, name + "_fwd", "vts", shape, fwd_work, time_it(o, [&] { consume(forward(inputs)); }));
  }
  if (!wanted(o, name + "_fwd_bwd")) return;
  Tensor seed;
  {
    vts::NoGradGuard no_grad;
    seed = random(forward(inputs).shape());
  }
  report(o, threads, name + "_fwd_bwd", "vts", shape, fwd_bwd_work, time_it(o, [&] {
           for (Tensor& t : inputs) t.zero_grad();
           forward(inputs).backward(seed);
           consume(inputs[0].grad());
         }));
}

void bench_layer_norm(const Options& o, int threads, int64_t rows, int64_t n) {
  const double tensor_bytes = 4.0 * double(rows) * double(n);
  bench_fwd_bwd(
      o, threads, "layer_norm", dims({rows, n}),
      {random(Shape{rows, n}, true), random(Shape{n}, true), random(Shape{n}, true)},
      [](const std::vector<Tensor>& in) { return vts::layer_norm(in[0], in[1], in[2], 1e-6f); },
      {2 * tensor_bytes, false}, {5 * tensor_bytes, false});
}

void bench_softmax(const Options& o, int threads, int64_t rows, int64_t n) {
  const double tensor_bytes = 4.0 * double(rows) * double(n);
  bench_fwd_bwd(
      o, threads, "softmax", dims({rows, n}), {random(Shape{rows, n}, true)},
      [](const std::vector<Tensor>& in) { return vts::softmax(in[0], -1); }, {2 * tensor_bytes, false},
      {5 * tensor_bytes, false});
}

void bench_gelu(const Options& o, int threads, int64_t rows, int64_t n) {
  const double tensor_bytes = 4.0 * double(rows) * double(n);
  bench_fwd_bwd(
      o, threads, "gelu", dims({rows, n}), {random(Shape{rows, n}, true)},
      [](const std::vector<Tensor>& in) { return vts::gelu(in[0]); }, {2 * tensor_bytes, false},
      {5 * tensor_bytes, false});
}

// Dropout at p = 0.1 in training mode: the mask drawn from Philox and applied in one pass. The
// work counted is the same as GELU's (x read and y written; backward reads the gradient and
// writes dx); the mask VTS also writes for the backward is its own cost.
void bench_dropout(const Options& o, int threads, int64_t rows, int64_t n) {
  const double tensor_bytes = 4.0 * double(rows) * double(n);
  bench_fwd_bwd(
      o, threads, "dropout", dims({rows, n}), {random(Shape{rows, n}, true)},
      [](const std::vector<Tensor>& in) {
        static vts::Generator gen(7);
        return vts::dropout(in[0], 0.1, true, gen);
      },
      {2 * tensor_bytes, false}, {5 * tensor_bytes, false});
}

void bench_attention(const Options& o, int threads, const std::string& name, int64_t B, int64_t H, int64_t N,
                     int64_t d) {
  const double base = double(B) * double(H) * double(N) * double(N) * double(d);
  bench_fwd_bwd(
      o, threads, name, dims({B, H, N, d}),
      {random(Shape{B, H, N, d}, true), random(Shape{B, H, N, d}, true), random(Shape{B, H, N, d}, true)},
      [](const std::vector<Tensor>& in) { return vts::attention(in[0], in[1], in[2]); }, {4 * base, true},
      {12 * base, true});
}

// One Adam step (PyTorch defaults, lr 1e-5 as the VTS scripts) on a 16M-element parameter: the
// update is one fused pass, threaded over the parameter.
void bench_adam(const Options& o, int threads, int64_t n) {
  const std::string name = "adam_step";
  if (!wanted(o, name)) return;
  Tensor p = random(Shape{n}, true);
  p.set_grad(random(Shape{n}));
  vts::optim::Adam<float> opt({p}, {.lr = 1e-5});
  report(o, threads, name, "vts", dims({n}), {7.0 * 4.0 * double(n), false}, time_it(o, [&] { opt.step(); }));
}

// A linear layer's default initialisation (init::linear_, PyTorch's nn.Linear rule) of a 16M-element
// weight: what building a model costs, ViT-B/16's all-token head alone being 155 M such values.
void bench_init(const Options& o, int threads, int64_t out, int64_t in) {
  const std::string name = "init_linear";
  if (!wanted(o, name)) return;
  Tensor w = Tensor::empty(Shape{out, in});
  vts::Generator g(11);
  report(o, threads, name, "vts", dims({out, in}), {4.0 * double(out) * double(in), false},
         time_it(o, [&] { vts::nn::init::linear_(w, Tensor(), g); }));
}

constexpr const char* kUsage = "usage: vts_bench_ops [--threads N] [--reps N] [--warmup N] [--filter SUBSTRING]\n";

int parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vts_bench_ops: %s expects a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&] { return vts_bench::whole_number_flag("vts_bench_ops", a, value()); };
    if (a == "--threads") o.threads = number();
    else if (a == "--reps") o.reps = number();
    else if (a == "--warmup") o.warmup = number();
    else if (a == "--filter") o.filter = value();
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fputs(kUsage, stderr);
      std::fprintf(stderr, "vts_bench_ops: unknown flag '%s'\n", a.c_str());
      return 2;
    }
  }
  if (o.threads < 0 || o.reps < 1 || o.warmup < 0) {
    std::fprintf(stderr, "vts_bench_ops: need --threads >= 0, --reps >= 1, --warmup >= 0, got --threads %d --reps %d "
                 "--warmup %d\n", o.threads, o.reps, o.warmup);
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int rc = parse(argc, argv, o)) return rc;
  if (o.threads > 0) vts::cpu::set_num_threads(o.threads);
  const int threads = vts::cpu::max_threads();
  Eigen::setNbThreads(threads);
#ifdef VTS_BENCH_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif

  const int64_t B = 4, tokens = 197, dim = 768, heads = 12, mlp = 3072;
  const int64_t M = B * tokens;
  try {
    bench_gemm(o, threads, "gemm_qkv", M, dim, 3 * dim);
    bench_gemm(o, threads, "gemm_fc1", M, dim, mlp);
    bench_gemm(o, threads, "gemm_fc2", M, mlp, dim);
    bench_gemm(o, threads, "gemm_tiny_qkv", 64 * 17, 64, 192);
    // The tiny model's fc2 (k = its MLP width) and its all-token head's forward at batch 64
    // (17 · 64 token features into 1,024).
    bench_gemm(o, threads, "gemm_tiny_fc2", 64 * 17, 256, 64);
    bench_gemm(o, threads, "gemm_tiny_head", 64, 17 * 64, 1024);
    // The all-token head's input gradient at batch 4: the output gradient times its 620 MB weight
    // (1,024 codes' inputs × 197 · 768 tokens' features), which gemm streams (gemm.hpp).
    bench_gemm(o, threads, "gemm_head_input_grad", B, 1024, tokens * dim);
    // Products deeper than 4,096 (the panel kernel cuts k into blocks): the small model's qkv
    // weight gradient at batch 64 (gᵀ·x over 64 · 65 tokens) and its all-token head's forward
    // (65 · 192 token features into 1,024; the vts_linear row is the layer's x·Wᵀ).
    bench_gemm(o, threads, "gemm_small_qkv_wgrad", 3 * 192, 64 * 65, 192, true);
    bench_gemm(o, threads, "gemm_small_head", 64, 65 * 192, 1024);
    bench_layer_norm(o, threads, M, dim);
    bench_softmax(o, threads, B * heads * tokens, tokens);
    bench_gelu(o, threads, M, mlp);
    bench_dropout(o, threads, M, mlp);
    bench_attention(o, threads, "attention_b16", B, heads, tokens, 64);
    bench_attention(o, threads, "attention_tiny", 64, 4, 17, 16);
    bench_adam(o, threads, int64_t(1) << 24);
    bench_init(o, threads, 4096, 4096);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vts_bench_ops: %s\n", e.what());
    return 1;
  }
  if (g_reported == 0) {
    std::string names;
    for (const std::string& n : g_case_names) names += (names.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "vts_bench_ops: --filter '%s' matches no case; the cases are %s\n", o.filter.c_str(),
                 names.c_str());
    return 2;
  }
  return 0;
}
