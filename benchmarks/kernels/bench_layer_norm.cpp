// LayerNorm forward and backward at ViT-B shapes: rows = B·N tokens (32·197 = 6304 and
// 32·50 = 1600), width 768, fp32 and bf16.
// Bytes counted (each tensor crossing DRAM once): forward x in, y out: 2·rows·n·sizeof(T);
// backward x, g in, dx out: 3·rows·n·sizeof(T) (w, b, μ, rstd and the dw/db partials are < 1%).
// Baseline: pytorch_rowwise.py (F.layer_norm). Reference: the D2D copy rate of bench_copy.
#include "bench_common.hpp"
#include "vts/backend/cpu/rowwise.hpp"
#include "vts/backend/cuda/layer_norm.hpp"

using namespace vts;
using namespace vts::bench;

namespace {

template <class T>
void run(const Options& o, Timer& timer, int64_t rows, int64_t n) {
  constexpr bool kBf16 = std::is_same_v<T, bf16>;
  const char* dtype = kBf16 ? "bf16" : "fp32";
  const std::string shape = std::to_string(rows) + "x" + std::to_string(n);
  const size_t total = static_cast<size_t>(rows * n);
  auto rounded = [&](std::vector<float> v) { return kBf16 ? to_float(to_bf16(v)) : v; };
  const auto x = rounded(random_normal(total, 5, 2.0f)), g = rounded(random_normal(total, 6));
  const auto w = rounded(random_normal(static_cast<size_t>(n), 7)), b = rounded(random_normal(static_cast<size_t>(n), 8));
  std::vector<float> y(total), mu(static_cast<size_t>(rows)), rs(static_cast<size_t>(rows)), gx(total),
      gw(static_cast<size_t>(n)), gb(static_cast<size_t>(n));
  cpu::layer_norm_rows(Cpu{}, x.data(), w.data(), b.data(), y.data(), mu.data(), rs.data(), rows, n, 1e-6f);
  cpu::layer_norm_rows_backward(Cpu{}, x.data(), w.data(), mu.data(), rs.data(), g.data(), gx.data(), gw.data(),
                                gb.data(), rows, n);
  auto dev = [&](const std::vector<float>& v) {
    if constexpr (kBf16) return upload(to_bf16(v));
    else return upload(v);
  };
  auto dx = dev(x), dg = dev(g), dw = dev(w), db = dev(b);
  cuda::DeviceBuffer dy(total * sizeof(T)), dmu(mu.size() * 4), drs(rs.size() * 4), dgx(total * sizeof(T)),
      dgw(static_cast<size_t>(n) * 4), dgb(static_cast<size_t>(n) * 4);
  auto as_float = [&](const cuda::DeviceBuffer& buf) {
    if constexpr (kBf16) return to_float(download<bf16>(buf, total));
    else return download<float>(buf, total);
  };
  auto fwd = [&] {
    cuda::layer_norm_rows(Cuda{}, dx.template as<T>(), dw.template as<T>(), db.template as<T>(), dy.template as<T>(), dmu.template as<float>(), drs.template as<float>(),
                          rows, n, 1e-6f);
  };
  auto bwd = [&] {
    cuda::layer_norm_rows_backward(Cuda{}, dx.template as<T>(), dw.template as<T>(), dmu.template as<float>(),
                                   drs.template as<float>(), dg.template as<T>(), dgx.template as<T>(),
                                   dgw.template as<float>(), dgb.template as<float>(), rows, n);
  };
  const double elem = double(total) * sizeof(T);
  if (selected(o, "layer_norm_fwd")) {
    fwd();
    const double err = o.check ? rel_err(as_float(dy), y) : -1;
    emit("layer_norm", "layer_norm_fwd", shape, dtype, "vts", timer.time(o, fwd), 2 * elem + 8.0 * rows, "GB/s", err);
    // Two rows a warp (cuda::LayerNormForwardLaunch), on a poisoned output. (w and b prefetched
    // into L1 with x, timed here as vts_prefetch_wb until 2026-12-04, ran 0.35-0.70x the default.)
    auto fwd_rows2 = [&] {
      cuda::layer_norm_rows(Cuda{}, dx.template as<T>(), dw.template as<T>(), db.template as<T>(), dy.template as<T>(),
                            dmu.template as<float>(), drs.template as<float>(), rows, n, 1e-6f,
                            cuda::LayerNormForwardLaunch{.rows_per_warp = 2});
    };
    poison(dy, total * sizeof(T));
    fwd_rows2();
    const double rows2_err = o.check ? rel_err(as_float(dy), y) : -1;
    emit("layer_norm", "layer_norm_fwd", shape, dtype, "vts_rows2", timer.time(o, fwd_rows2), 2 * elem + 8.0 * rows,
         "GB/s", rows2_err);
  }
  if (selected(o, "layer_norm_bwd")) {
    fwd();  // μ and rstd
    bwd();
    // The largest of dx's, dw's and db's errors against the CPU (-1: not checked).
    auto bwd_err = [&] {
      return o.check ? std::max({rel_err(as_float(dgx), gx), rel_err(download<float>(dgw, gw.size()), gw),
                                 rel_err(download<float>(dgb, gb.size()), gb)})
                     : -1;
    };
    const double err = bwd_err();
    emit("layer_norm", "layer_norm_bwd", shape, dtype, "vts", timer.time(o, bwd), 3 * elem + 8.0 * rows, "GB/s", err);
    // dx alone (no dw/db: no partial rows, no second kernel), to see what the parameter
    // gradients cost. Same bytes counted.
    auto bwd_dx = [&] {
      cuda::layer_norm_rows_backward(Cuda{}, dx.template as<T>(), dw.template as<T>(), dmu.template as<float>(),
                                     drs.template as<float>(), dg.template as<T>(), dgx.template as<T>(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), rows, n);
    };
    double dx_err = -1;
    if (o.check) {
      poison(dgx, total * sizeof(T));
      bwd_dx();
      dx_err = rel_err(as_float(dgx), gx);
    }
    emit("layer_norm", "layer_norm_bwd", shape, dtype, "vts_dx_only", timer.time(o, bwd_dx), 3 * elem + 8.0 * rows,
         "GB/s", dx_err);
    // Other launch shapes of the fast path than the library's (8 warps × 2 blocks per SM, 16 final
    // row groups): fewer or more partial rows, a wider or narrower final sum (docs/cuda.md, "What is
    // left"), each warp's next row prefetched into shared memory ("_prefetch"), the partial rows
    // added by the backward kernel's last blocks in two levels instead of a second launch ("_fold2",
    // the same dw/db bits as the launch without it), and the dw/db sums kept in shared memory instead
    // of registers ("_shared": 80 registers instead of 125, so 3 blocks an SM fit; at 2 blocks an SM
    // it shows what the shared-memory traffic costs alone). Each is checked
    // against the CPU reference like the default; "vts_w16x1_g16" is 16 warps per block, 1 block
    // per SM, 16 row groups in the final kernel.
    const cuda::LayerNormBackwardLaunch launches[] = {{16, 1, 16}, {16, 1, 32}, {8, 1, 16},       {8, 2, 8},
                                                      {8, 2, 32},  {4, 4, 16},  {4, 4, 32},       {8, 2, 16, true},
                                                      {8, 1, 16, true}, {4, 4, 16, true},
                                                      {8, 2, 16, false, true}, {8, 2, 16, true, true},
                                                      {8, 2, 16, false, false, true}, {8, 3, 16, false, false, true},
                                                      {8, 3, 16, false, true, true}};
    for (const auto& launch : launches) {
      auto bwd_launch = [&] {
        cuda::layer_norm_rows_backward(Cuda{}, dx.template as<T>(), dw.template as<T>(), dmu.template as<float>(),
                                       drs.template as<float>(), dg.template as<T>(), dgx.template as<T>(),
                                       dgw.template as<float>(), dgb.template as<float>(), rows, n, launch);
      };
      poison(dgx, total * sizeof(T));
      poison(dgw, gw.size() * 4);
      poison(dgb, gb.size() * 4);
      bwd_launch();
      const double launch_err = bwd_err();
      const std::string impl = "vts_w" + std::to_string(launch.warps_per_block) + "x" +
                               std::to_string(launch.blocks_per_sm) + "_g" + std::to_string(launch.final_groups) +
                               (launch.prefetch_rows ? "_prefetch" : "") + (launch.fold_by_class ? "_fold2" : "") +
                               (launch.shared_sums ? "_shared" : "");
      emit("layer_norm", "layer_norm_bwd", shape, dtype, impl.c_str(), timer.time(o, bwd_launch),
           3 * elem + 8.0 * rows, "GB/s", launch_err);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  require_device();
  Timer timer;
  for (int64_t rows : {32 * 197, 32 * 50}) {
    run<bf16>(o, timer, rows, 768);
    run<float>(o, timer, rows, 768);
  }
  return 0;
}
