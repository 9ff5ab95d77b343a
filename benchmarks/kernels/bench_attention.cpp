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
// packed: the operands in the layout the ViT step hands the kernels (ops/attention.hpp,
// self_attention_packed): q, k, v interleaved in one [B, N, 3, H, d] buffer, so consecutive rows of
// one operand are 3·H·d elements apart; o, its gradient and the output [B, N, H, d]; the gradients
// of q, k, v written into one buffer like the input. The shape gets "_packed"; the other rows use
// the contiguous [B, H, N, d] of each operand, the PyTorch peers' layout.
template <class T>
void run(const Options& o, Timer& timer, int64_t N, bool hopper, bool packed = false) {
  constexpr bool kBf16 = std::is_same_v<T, bf16>;
  const char* dtype = kBf16 ? "bf16" : "fp32";
  const int64_t B = 32, H = 12, d = 64;
  if (hopper && (!kBf16 || !cuda::attention_bf16_wgmma_supported(N, d))) return;
  const std::string shape = "B32xH12xN" + std::to_string(N) + "xd64" + (packed ? "_packed" : "");
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
  // Where element (b, h, i, j) of an operand lives on the device: its offset from the operand's base
  // pointer and that operand's layout. Contiguous: [B, H, N, d] each; packed: rows of `width`
  // elements (3·H·d for q, k, v and their gradients, H·d for o and its gradient).
  auto device_layout = [&](auto* base, int64_t width) {
    using E = std::remove_pointer_t<decltype(base)>;
    return packed ? HeadLayout<E>{base, N * width, d, width} : HeadLayout<E>{base, sb, sh, sn};
  };
  const int64_t qkv_width = packed ? 3 * H * d : d, row_width = packed ? H * d : d;
  // The host vectors (contiguous [B, H, N, d]) placed as the device layout has them: several
  // operands side by side in one buffer (q, k, v: 3), or one.
  auto place = [&](std::initializer_list<const std::vector<float>*> operands, int64_t width) -> std::vector<float> {
    if (!packed) return **operands.begin();
    std::vector<float> out(static_cast<size_t>(B * N * width));
    int64_t which = 0;
    for (const auto* x : operands) {
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < N; ++i)
            std::copy_n(x->data() + ((b * H + h) * N + i) * d, d,
                        out.data() + (b * N + i) * width + which * H * d + h * d);
      ++which;
    }
    return out;
  };
  // The inverse for one operand (`which` of those side by side) read back from the device.
  auto unplace = [&](const std::vector<float>& x, int64_t width, int64_t which) {
    if (!packed) return x;
    std::vector<float> out(n);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < N; ++i)
          std::copy_n(x.data() + (b * N + i) * width + which * H * d + h * d, d,
                      out.data() + ((b * H + h) * N + i) * d);
    return out;
  };
  // q, k, v (and their gradients) in one buffer when packed, one each otherwise; the pointers below
  // are each operand's base.
  auto dqkv = packed ? dev(place({&q, &k, &v}, qkv_width)) : dev(q);
  auto dk_ = packed ? cuda::DeviceBuffer(0) : dev(k), dv_ = packed ? cuda::DeviceBuffer(0) : dev(v);
  auto dg_ = dev(place({&g}, row_width)), do_in = dev(place({&o_in}, row_width));
  const size_t grad_elems = packed ? 3 * n : n;
  cuda::DeviceBuffer dout(n * sizeof(T)), dlse(lse_ref.size() * sizeof(float)), dlse_in = upload(lse_ref),
      gq(grad_elems * sizeof(T)), gk(packed ? 0 : n * sizeof(T)), gv(packed ? 0 : n * sizeof(T));
  const T* pq = dqkv.template as<T>();
  const T* pk = packed ? pq + H * d : dk_.template as<T>();
  const T* pv = packed ? pq + 2 * H * d : dv_.template as<T>();
  const T *pg = dg_.template as<T>(), *po_in = do_in.template as<T>();
  T* pgq = gq.template as<T>();
  T* pgk = packed ? pgq + H * d : gk.template as<T>();
  T* pgv = packed ? pgq + 2 * H * d : gv.template as<T>();

  auto fwd = [&] {
    cuda::attention_forward(Cuda{}, B, H, N, d, scale, device_layout(pq, qkv_width), device_layout(pk, qkv_width),
                            device_layout(pv, qkv_width), device_layout(dout.template as<T>(), row_width),
                            dlse.template as<float>());
  };
  auto bwd = [&] {
    cuda::attention_backward(Cuda{}, B, H, N, d, scale, device_layout(pq, qkv_width), device_layout(pk, qkv_width),
                             device_layout(pv, qkv_width), device_layout(po_in, row_width),
                             dlse_in.template as<float>(), device_layout(pg, row_width),
                             device_layout(pgq, qkv_width), device_layout(pgk, qkv_width),
                             device_layout(pgv, qkv_width));
  };
  auto download_float = [&](const cuda::DeviceBuffer& b, size_t count) {
    if constexpr (kBf16) return to_float(download<bf16>(b, count));
    else return download<float>(b, count);
  };
  auto as_float = [&](const cuda::DeviceBuffer& b) { return unplace(download_float(b, n), row_width, 0); };
  // The gradient of operand `which` (0: q, 1: k, 2: v) as [B, H, N, d].
  auto grad = [&](int which) {
    if (packed) return unplace(download_float(gq, 3 * n), qkv_width, which);
    return download_float(which == 0 ? gq : which == 1 ? gk : gv, n);
  };
  // Poisons what a timed call writes: the output or the gradients (one buffer when packed).
  auto poison_all = [&](std::initializer_list<cuda::DeviceBuffer*> outputs) {
    for (auto* out : outputs)
      if (out->bytes() > 0) poison(*out, out->bytes());
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
        poison_all(outputs);
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
      poison_all({&dout});
      fwd();
      err = rel_err(as_float(dout), o_ref);
    }
    emit("attention", "attention_fwd", shape, dtype, "vts", timer.time(o, fwd), 4 * flops, "TFLOP/s", err);
    // fp32: the work past N left out ("vts_skip_padding1"; the same bits).
    if constexpr (!kBf16)
      time_setting(
          "attention_fwd", 4 * flops, {1}, [](int v) { cuda::set_attention_f32_skip_padding(v != 0); },
          [] { return int(cuda::attention_f32_skip_padding()); }, "vts_skip_padding", "", fwd, {&dout},
          [&] { return rel_err(as_float(dout), o_ref); });
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
    return std::max({rel_err(grad(0), dq_ref), rel_err(grad(1), dk_ref), rel_err(grad(2), dv_ref)});
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
      poison_all({&gq, &gk, &gv});
      bwd();
      err = bwd_err();
    }
    emit("attention", "attention_bwd", shape, dtype, "vts", timer.time(o, bwd), 10 * flops, "TFLOP/s", err);
    if constexpr (!kBf16)
      time_setting(
          "attention_bwd", 10 * flops, {1}, [](int v) { cuda::set_attention_f32_skip_padding(v != 0); },
          [] { return int(cuda::attention_f32_skip_padding()); }, "vts_skip_padding", "", bwd, {&gq, &gk, &gv},
          bwd_err);
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
  // bf16 in the training step's own layout (the rows compare.py --choose decides on).
  for (int64_t N : {197, 50}) run<bf16>(o, timer, N, false, true);
  for (int64_t N : {197, 50}) {
    run<bf16>(o, timer, N, true);
    run<bf16>(o, timer, N, true, true);
  }
  return 0;
}
