// Fused attention forward and backward at ViT shapes: B=32, H=12, d=64, N=197 (ViT-B/16) and
// N=50 (ViT-B/32), fp32 (SIMT) and bf16 (tensor cores), layout [B, H, N, d].
//
// Work counted: forward 4·B·H·N²·d FLOPs (Q·Kᵀ and P·V); backward 10·B·H·N²·d (S recomputed,
// dP, dV, dK, dQ: five products), the FlashAttention papers' convention — the fp32 backward
// actually executes 14·B·H·N²·d (it recomputes S and dP in its second kernel), which the rate does
// not credit. Baseline: benchmarks/kernels/pytorch_attention.py (PyTorch SDPA with each backend,
// cuDNN's fused attention among them) on the same card, joined by compare.py.
// Each measurement is checked against vts::cpu at the full shape first (rel_err in the JSON).
#include <cmath>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "vts/backend/cpu/attention.hpp"
#include "vts/backend/cuda/attention.hpp"

using namespace vts;
using namespace vts::bench;

namespace {

// hopper: time only the Hopper (wgmma) kernels, "vts_wgmma1", where they run — a pass of its own
// after every other line, so that a kernel that has never run on a device cannot take the other
// lines down with it (a fault ends the process's CUDA context).
template <class T>
void run(const Options& o, Timer& timer, int64_t N, bool hopper) {
  constexpr bool kBf16 = std::is_same_v<T, bf16>;
  const char* dtype = kBf16 ? "bf16" : "fp32";
  const int64_t B = 32, H = 12, d = 64;
  if (hopper && (!kBf16 || !cuda::attention_bf16_wgmma_supported(N, d))) return;
  const std::string shape = "B32xH12xN" + std::to_string(N) + "xd64";
  const size_t n = static_cast<size_t>(B * H * N * d);
  const float scale = 1.0f / std::sqrt(float(d));
  auto rounded = [&](std::vector<float> v) { return kBf16 ? to_float(to_bf16(v)) : v; };
  const auto q = rounded(random_normal(n, 1)), k = rounded(random_normal(n, 2)), v = rounded(random_normal(n, 3)),
             g = rounded(random_normal(n, 4));
  const int64_t sb = H * N * d, sh = N * d, sn = d;
  auto lay = [&](auto* p) { return HeadLayout<std::remove_pointer_t<decltype(p)>>{p, sb, sh, sn}; };

  // CPU reference (also provides o and lse for the backward benchmark).
  std::vector<float> o_ref(n), lse_ref(static_cast<size_t>(B * H * N)), dq_ref(n), dk_ref(n), dv_ref(n);
  cpu::attention_forward(Cpu{}, B, H, N, d, scale, lay(q.data()), lay(k.data()), lay(v.data()), lay(o_ref.data()),
                         lse_ref.data());
  const auto o_in = rounded(o_ref);
  if (o.check)
    cpu::attention_backward(Cpu{}, B, H, N, d, scale, lay(q.data()), lay(k.data()), lay(v.data()), lay(o_in.data()),
                            lse_ref.data(), lay(g.data()), lay(dq_ref.data()), lay(dk_ref.data()), lay(dv_ref.data()));

  auto dev = [&](const std::vector<float>& x) {
    if constexpr (kBf16) return upload(to_bf16(x));
    else return upload(x);
  };
  auto dq_ = dev(q), dk_ = dev(k), dv_ = dev(v), dg_ = dev(g), do_in = dev(o_in);
  cuda::DeviceBuffer dout(n * sizeof(T)), dlse(lse_ref.size() * sizeof(float)), dlse_in = upload(lse_ref),
      gq(n * sizeof(T)), gk(n * sizeof(T)), gv(n * sizeof(T));
  const T *pq = dq_.template as<T>(), *pk = dk_.template as<T>(), *pv = dv_.template as<T>(), *pg = dg_.template as<T>(), *po_in = do_in.template as<T>();

  auto fwd = [&] {
    cuda::attention_forward(Cuda{}, B, H, N, d, scale, lay(pq), lay(pk), lay(pv), lay(dout.template as<T>()), dlse.template as<float>());
  };
  auto bwd = [&] {
    cuda::attention_backward(Cuda{}, B, H, N, d, scale, lay(pq), lay(pk), lay(pv), lay(po_in), dlse_in.template as<float>(),
                             lay(pg), lay(gq.template as<T>()), lay(gk.template as<T>()), lay(gv.template as<T>()));
  };
  auto as_float = [&](const cuda::DeviceBuffer& b) {
    if constexpr (kBf16) return to_float(download<bf16>(b, n));
    else return download<float>(b, n);
  };

  const double flops = double(B * H) * double(N * N) * double(d);
  // Times `run` under each value of a process-wide kernel setting (the cuda:: setter and getter),
  // as "<prefix><value><suffix>", each on poisoned outputs checked against the CPU; then puts the
  // setting back.
  auto time_setting = [&](const char* kernel, double work, std::initializer_list<int> values, void (*set)(int),
                          int (*get)(), const char* prefix, const char* suffix, auto& run,
                          std::initializer_list<cuda::DeviceBuffer*> outputs, auto&& error) {
    const int was = get();
    for (const int v : values) {
      set(v);
      double variant_err = -1;
      if (o.check) {
        for (auto* out : outputs) poison(*out, n * sizeof(T));
        run();
        variant_err = error();
      }
      emit("attention", kernel, shape, dtype, (prefix + std::to_string(v) + suffix).c_str(), timer.time(o, run), work,
           "TFLOP/s", variant_err);
    }
    set(was);
  };
  if (selected(o, "attention_fwd") && hopper) {
    auto fwd_err = [&] { return rel_err(as_float(dout), o_ref); };
    time_setting(
        "attention_fwd", 4 * flops, {1}, [](int v) { cuda::set_attention_bf16_forward_wgmma(v != 0); },
        [] { return int(cuda::attention_bf16_forward_wgmma()); }, "vts_wgmma", "", fwd, {&dout}, fwd_err);
    // "vts_wgmma1_blocks3": its registers held to 3 blocks an SM (12 warps instead of 8).
    const bool wgmma_was = cuda::attention_bf16_forward_wgmma();
    cuda::set_attention_bf16_forward_wgmma(true);
    time_setting("attention_fwd", 4 * flops, {3}, cuda::set_attention_bf16_forward_wgmma_blocks,
                 cuda::attention_bf16_forward_wgmma_blocks, "vts_wgmma1_blocks", "", fwd, {&dout}, fwd_err);
    cuda::set_attention_bf16_forward_wgmma(wgmma_was);
  }
  if (selected(o, "attention_fwd") && !hopper) {
    double err = -1;
    if (o.check) {
      fwd();
      err = rel_err(as_float(dout), o_ref);
    }
    emit("attention", "attention_fwd", shape, dtype, "vts", timer.time(o, fwd), 4 * flops, "TFLOP/s", err);
    // The bf16 forward's block shapes; "vts" above is the default (64 rows a block, 16 a warp).
    // "vts_rows<r>": r rows a block, 16 a warp; "vts_rows<r>_warp32": two m16 tiles a warp.
    if constexpr (kBf16) {
      auto fwd_err = [&] { return rel_err(as_float(dout), o_ref); };
      time_setting("attention_fwd", 4 * flops, {64, 128}, cuda::set_attention_bf16_forward_rows,
                   cuda::attention_bf16_forward_rows, "vts_rows", "", fwd, {&dout}, fwd_err);
      const int warp_rows_was = cuda::attention_bf16_forward_warp_rows();
      cuda::set_attention_bf16_forward_warp_rows(32);
      time_setting("attention_fwd", 4 * flops, {64, 128}, cuda::set_attention_bf16_forward_rows,
                   cuda::attention_bf16_forward_rows, "vts_rows", "_warp32", fwd, {&dout}, fwd_err);
      cuda::set_attention_bf16_forward_warp_rows(warp_rows_was);
      // The default layout's ways of running its key tiles (cuda::kAttentionForwardSwitches): the row
      // "vts_<name>1[_<name>1...]" times the switches named switched on together.
      using Switch = cuda::AttentionForwardSwitch;
      const auto& [narrow, mask_last, loads, fold] = cuda::kAttentionForwardSwitches;
      auto time_switched_on = [&](std::initializer_list<Switch> switches) {
        std::string impl = "vts";
        std::vector<bool> was;
        for (const Switch& sw : switches) {
          impl += std::string("_") + sw.name + "1";
          was.push_back(sw.get());
          sw.set(true);
        }
        double variant_err = -1;
        if (o.check) {
          poison(dout, n * sizeof(T));
          fwd();
          variant_err = fwd_err();
        }
        emit("attention", "attention_fwd", shape, dtype, impl.c_str(), timer.time(o, fwd), 4 * flops, "TFLOP/s",
             variant_err);
        size_t i = 0;
        for (const Switch& sw : switches) sw.set(was[i++]);
      };
      // A last key tile of ≤ 16 keys done as 16 (N = 197: 5 keys; N = 50 has none: the default again);
      // the key mask only in a tile reaching past N (N = 197: the fourth of four; N = 50: its one
      // tile); the tiles' cp.async copies from a fully unrolled loop; the scale inside the
      // exponentials' FFMA (not the default's bits: its rel_err is its own). Then combinations.
      time_switched_on({narrow});
      time_switched_on({mask_last});
      time_switched_on({loads});
      time_switched_on({fold});
      time_switched_on({loads, mask_last});
      time_switched_on({loads, mask_last, narrow});
      time_switched_on({loads, mask_last, narrow, fold});
    }
  }
  auto bwd_err = [&] {
    return std::max({rel_err(as_float(gq), dq_ref), rel_err(as_float(gk), dk_ref), rel_err(as_float(gv), dv_ref)});
  };
  if (selected(o, "attention_bwd") && hopper) {
    // Credits 10·B·H·N²·d; executes 14, as the split.
    time_setting(
        "attention_bwd", 10 * flops, {1}, [](int v) { cuda::set_attention_bf16_backward_wgmma(v != 0); },
        [] { return int(cuda::attention_bf16_backward_wgmma()); }, "vts_wgmma", "", bwd, {&gq, &gk, &gv}, bwd_err);
  }
  if (selected(o, "attention_bwd") && !hopper) {
    double err = -1;
    if (o.check) {
      bwd();
      err = bwd_err();
    }
    emit("attention", "attention_bwd", shape, dtype, "vts", timer.time(o, bwd), 10 * flops, "TFLOP/s", err);
    // The bf16 backward's other layouts; "vts" is the default: the one-CTA-per-head kernel with one
    // or two barriers per query block ("vts_1barrier", "vts_2barrier"), and the split dQ + dK/dV
    // kernels ("vts_split1"; the rate still credits 10·B·H·N²·d, it executes 14).
    if constexpr (kBf16) {
      time_setting("attention_bwd", 10 * flops, {1, 2}, cuda::set_attention_bf16_backward_barriers,
                   cuda::attention_bf16_backward_barriers, "vts_", "barrier", bwd, {&gq, &gk, &gv}, bwd_err);
      time_setting(
          "attention_bwd", 10 * flops, {1}, [](int v) { cuda::set_attention_bf16_backward_split(v != 0); },
          [] { return int(cuda::attention_bf16_backward_split()); }, "vts_split", "", bwd, {&gq, &gk, &gv}, bwd_err);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  require_device();
  Timer timer;
  for (int64_t N : {197, 50}) {
    run<bf16>(o, timer, N, false);
    run<float>(o, timer, N, false);
  }
  for (int64_t N : {197, 50}) run<bf16>(o, timer, N, true);
  return 0;
}
