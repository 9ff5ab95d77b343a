// GELU forward and backward on the ViT-B MLP activation: 32·197 tokens × 3072, fp32 and bf16.
// "vts" is the library's kernel (Φ by erff in fp32, by the exp form in bf16); bf16 also times the
// erff kernel as "vts_erf_form", the default before 2026-12-04.
// Bytes counted: forward 2·n·sizeof(T), backward 3·n·sizeof(T).
// Baseline: pytorch_rowwise.py (F.gelu, approximate='none').
// Also GELU then dropout (p = 0.1), the MLP's middle: "vts" the fused kernels
// (gelu_dropout_forward/backward), "vts_two_launches" GELU and dropout_apply one after the other;
// counted as GELU's bytes, so the rates compare; peer F.dropout(F.gelu(x)).
#include "bench_common.hpp"
#include "vts/backend/cpu/activation.hpp"
#include "vts/backend/cpu/dropout.hpp"
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/dropout.hpp"

using namespace vts;
using namespace vts::bench;

namespace {

template <class T>
void run(const Options& o, Timer& timer, int64_t rows, int64_t width) {
  constexpr bool kBf16 = std::is_same_v<T, bf16>;
  const char* dtype = kBf16 ? "bf16" : "fp32";
  const std::string shape = std::to_string(rows) + "x" + std::to_string(width);
  const size_t n = static_cast<size_t>(rows * width);
  auto rounded = [&](std::vector<float> v) { return kBf16 ? to_float(to_bf16(v)) : v; };
  const auto x = rounded(random_normal(n, 9, 2.0f)), g = rounded(random_normal(n, 10));
  std::vector<float> y(n), gx(n);
  cpu::gelu_forward(Cpu{}, x.data(), y.data(), static_cast<int64_t>(n));
  cpu::gelu_backward(Cpu{}, x.data(), g.data(), gx.data(), static_cast<int64_t>(n));
  auto dev = [&](const std::vector<float>& v) {
    if constexpr (kBf16) return upload(to_bf16(v));
    else return upload(v);
  };
  auto dx = dev(x), dg = dev(g);
  cuda::DeviceBuffer dy(n * sizeof(T)), dgx(n * sizeof(T));
  auto as_float = [&](const cuda::DeviceBuffer& buf) {
    if constexpr (kBf16) return to_float(download<bf16>(buf, n));
    else return download<float>(buf, n);
  };
  auto fwd = [&] { cuda::gelu_forward(Cuda{}, dx.template as<T>(), dy.template as<T>(), static_cast<int64_t>(n)); };
  auto bwd = [&] { cuda::gelu_backward(Cuda{}, dx.template as<T>(), dg.template as<T>(), dgx.template as<T>(), static_cast<int64_t>(n)); };
  const double bytes = double(n) * sizeof(T);
  // bf16 only: Φ by erff (cuda::GeluLaunch) instead of the exp form, on poisoned outputs.
  const cuda::GeluLaunch erf_form{.erf_form = true};
  if (selected(o, "gelu_fwd")) {
    fwd();
    emit("gelu", "gelu_fwd", shape, dtype, "vts", timer.time(o, fwd), 2 * bytes, "GB/s",
         o.check ? rel_err(as_float(dy), y) : -1);
    if constexpr (kBf16) {
      auto fwd_erf = [&] {
        cuda::gelu_forward(Cuda{}, dx.template as<T>(), dy.template as<T>(), static_cast<int64_t>(n), erf_form);
      };
      poison(dy, n * sizeof(T));
      fwd_erf();
      emit("gelu", "gelu_fwd", shape, dtype, "vts_erf_form", timer.time(o, fwd_erf), 2 * bytes, "GB/s",
           o.check ? rel_err(as_float(dy), y) : -1);
    }
  }
  if (selected(o, "gelu_bwd")) {
    bwd();
    emit("gelu", "gelu_bwd", shape, dtype, "vts", timer.time(o, bwd), 3 * bytes, "GB/s",
         o.check ? rel_err(as_float(dgx), gx) : -1);
    if constexpr (kBf16) {
      auto bwd_erf = [&] {
        cuda::gelu_backward(Cuda{}, dx.template as<T>(), dg.template as<T>(), dgx.template as<T>(),
                            static_cast<int64_t>(n), erf_form);
      };
      poison(dgx, n * sizeof(T));
      bwd_erf();
      emit("gelu", "gelu_bwd", shape, dtype, "vts_erf_form", timer.time(o, bwd_erf), 3 * bytes, "GB/s",
           o.check ? rel_err(as_float(dgx), gx) : -1);
    }
  }
  // GELU + dropout: the CPU reference applies the CPU's mask (the same draw) to GELU's forward and
  // backward results.
  const double p = 0.1;
  const cuda::DropoutDraw draw{0x5eedull, 1000, static_cast<uint32_t>(p * 16777216.0),
                               static_cast<float>(T(1.0 / (1.0 - p)))};
  std::vector<float> mask(n), y_drop(n), gx_drop(n);
  cpu::dropout_mask(Cpu{}, draw.seed, draw.first_block, static_cast<int64_t>(n), draw.threshold, draw.keep_scale,
                    mask.data());
  for (size_t i = 0; i < n; ++i) {
    y_drop[i] = y[i] * mask[i];
    gx_drop[i] = gx[i] * mask[i];
  }
  cuda::DeviceBuffer dtmp(n * sizeof(T));
  const int64_t ni = static_cast<int64_t>(n);
  // "vts_keep": the pair that keeps the mask as bits (n/4 bytes, written by the forward and read by
  // the backward instead of Philox); its bytes are not added to the count, so its rate compares.
  cuda::DeviceBuffer keep((n + 3) / 4);
  cuda::gelu_dropout_forward_keep(Cuda{}, dx.template as<T>(), dy.template as<T>(), ni, draw, keep.as<uint8_t>());
  if (selected(o, "gelu_dropout_fwd")) {
    auto fused = [&] { cuda::gelu_dropout_forward(Cuda{}, dx.template as<T>(), dy.template as<T>(), ni, draw); };
    auto two = [&] {
      cuda::gelu_forward(Cuda{}, dx.template as<T>(), dtmp.template as<T>(), ni);
      cuda::dropout_apply(Cuda{}, draw.seed, draw.first_block, ni, draw.threshold, draw.keep_scale,
                          dtmp.template as<T>(), dy.template as<T>());
    };
    std::vector<std::pair<const char*, std::function<void()>>> impls{{"vts", fused}, {"vts_two_launches", two}};
    impls.emplace_back("vts_keep", [&] {
      cuda::gelu_dropout_forward_keep(Cuda{}, dx.template as<T>(), dy.template as<T>(), ni, draw, keep.as<uint8_t>());
    });
    if constexpr (kBf16) {
      impls.emplace_back("vts_erf_form", [&] {
        cuda::gelu_dropout_forward(Cuda{}, dx.template as<T>(), dy.template as<T>(), ni, draw, erf_form);
      });
    }
    for (const auto& [impl, run] : impls) {
      poison(dy, n * sizeof(T));
      run();
      emit("gelu", "gelu_dropout_fwd", shape, dtype, impl, timer.time(o, run), 2 * bytes, "GB/s",
           o.check ? rel_err(as_float(dy), y_drop) : -1);
    }
  }
  if (selected(o, "gelu_dropout_bwd")) {
    auto fused = [&] {
      cuda::gelu_dropout_backward(Cuda{}, dx.template as<T>(), dg.template as<T>(), dgx.template as<T>(), ni, draw);
    };
    auto two = [&] {
      cuda::dropout_apply(Cuda{}, draw.seed, draw.first_block, ni, draw.threshold, draw.keep_scale,
                          dg.template as<T>(), dtmp.template as<T>());
      cuda::gelu_backward(Cuda{}, dx.template as<T>(), dtmp.template as<T>(), dgx.template as<T>(), ni);
    };
    std::vector<std::pair<const char*, std::function<void()>>> impls{{"vts", fused}, {"vts_two_launches", two}};
    impls.emplace_back("vts_keep", [&] {
      cuda::gelu_dropout_backward_kept(Cuda{}, dx.template as<T>(), dg.template as<T>(), dgx.template as<T>(), ni,
                                       keep.as<uint8_t>(), draw.keep_scale);
    });
    if constexpr (kBf16) {
      impls.emplace_back("vts_erf_form", [&] {
        cuda::gelu_dropout_backward(Cuda{}, dx.template as<T>(), dg.template as<T>(), dgx.template as<T>(), ni, draw,
                                    erf_form);
      });
    }
    for (const auto& [impl, run] : impls) {
      poison(dgx, n * sizeof(T));
      run();
      emit("gelu", "gelu_dropout_bwd", shape, dtype, impl, timer.time(o, run), 3 * bytes, "GB/s",
           o.check ? rel_err(as_float(dgx), gx_drop) : -1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  require_device();
  Timer timer;
  run<bf16>(o, timer, 32 * 197, 3072);
  run<float>(o, timer, 32 * 197, 3072);
  return 0;
}
