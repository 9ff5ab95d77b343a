// Times full training steps of the hashing model on random input: forward in training mode
// (dropout on), CSQ loss, backward, Adam — ViTTiny28 / ViTSmall32 / ViTB16 / ViTB32 with the
// all-token hash head and 64 bits. Prints one JSON line. The PyTorch peer is pytorch_train_step.py
// beside this file; run both with the same --batch, --steps and --threads (and --device).
//
// --device cuda (a build with vts::cuda) runs the same step on the GPU in fp32 (cuBLAS GEMMs with
// TF32 tensor cores, the fused attention, LayerNorm and GELU kernels); each step is timed between
// two synchronisations of the stream, so the figure is the whole step, launch gaps included.
// --gemm bf16 keeps the fp32 model but runs its GEMMs on bf16 tensor cores (cuBLAS FAST_16BF).
// --precision bf16 (CUDA only) is bf16 training: the network's weights and activations are bf16,
// its output is cast to fp32 for the loss, and Adam updates fp32 master weights (the recipe of
// PyTorch's autocast, except that autocast keeps fp32 weights and casts them at every use).
// --profile-steps K (CUDA) runs K more steps after the timed ones under the op profiler
// (vts/backend/cuda/profile.hpp) and prints one JSON line per op name: its calls and device time
// per step and its share of the profiled time — where the step's time goes. The timed steps are
// not profiled (the profiler's events cost the host about a microsecond per op).
// --cuda-graphs (CUDA) replays the network's forward and backward from captured CUDA graphs
// (vts/nn/captured.hpp; the loss and Adam stay op by op): the first step runs op by op, the second
// captures. The JSON then gives the graphs' recorded operations ("graph_nodes").
// --attention-bwd split|one_barrier|wgmma (CUDA, bf16) runs the attention backward as the split
// pair of kernels (dQ, then dK/dV; cuda::set_attention_bf16_backward_split), as the one-CTA kernel
// with one barrier a query block (set_attention_bf16_backward_barriers(1)), or on the Hopper kernels
// (set_attention_bf16_backward_wgmma) instead of the default one-CTA-per-head kernel — the kernel
// benchmark's rows vts_split1, vts_1barrier, vts_wgmma1.
// --hopper-attention (CUDA, bf16) runs the attention forward and backward on the Hopper kernels
// (wgmma, sm_90a; cuda::set_attention_bf16_{forward,backward}_wgmma) where they apply: d = 64,
// N ≤ 256, compute capability 9.0 — the B/16 and B/32 configs on an H100/H200. The same as
// --attention-fwd wgmma --attention-bwd wgmma.
// --attention-f32 composite (CUDA, fp32) runs the fp32 attention from the composite ops (matmul on
// the fp32 GEMM mode, TF32 by default; softmax; matmul; cuda::set_attention_f32_composite) instead of
// the fused SIMT kernels: the candidate for the fp32 step, where the fused kernels lose to PyTorch's.
// --attention-f32 skip_padding keeps the fused kernels without the work past N
// (cuda::set_attention_f32_skip_padding, the kernel benchmark's vts_skip_padding1).
// --keep-dropout-mask (CUDA) has the MLP's fused GELU + dropout keep its mask as bits for the
// backward instead of drawing it again (cuda::set_gelu_dropout_keep_mask), the candidate default.
// --attention-fwd LIST (CUDA, bf16) picks the attention forward, a comma-separated list of the
// kernel benchmark's row names without "vts_" and the trailing 1s: the mma.sync forward's
// selectable tile code, any of narrow_last, mask_last, unrolled_loads, fold_scale
// (cuda::kAttentionForwardSwitches: rows vts_narrow_last1 ... vts_unrolled_loads1_mask_last1...);
// or its other block shapes, rows128 and warp32 (128 query rows a block, 32 a warp: vts_rows128,
// vts_rows64_warp32, vts_rows128_warp32; the tile-code switches apply to the default shape only, so
// not with them); or the Hopper forward, wgmma, optionally with blocks3 (vts_wgmma1,
// vts_wgmma1_blocks3; alone).
// --layer-norm LIST (CUDA) has the ops' LayerNorm calls take other launches
// (cuda::set_layer_norm_{forward,backward}_launch), any of rows2 (forward, two rows a warp: the
// kernel benchmark's vts_rows2), shared (backward: dw/db sums in shared memory, 3 blocks an SM:
// vts_w8x3_g16_shared), fold (backward: fold_by_class, vts_w8x2_g16_fold2), prefetch (backward:
// prefetch_rows; not with shared). Both time in the whole step what the kernel benchmark times alone.
// Without one of these flags its settings stay the library's defaults; the JSON line names every
// kernel setting that differs from the long-standing defaults, read back from the library.
// --label NAME adds "label": NAME to the JSON line: benchmarks/kernels/compare.py pairs the steps
// labelled "chosen" (scripts/gpu-check's combination of the kernel candidates that won) with the
// default step.
// --mode encode times what `vts encode` does per batch instead of a training step: the network's
// forward in evaluation mode (dropout off) with no graph recorded, and its outputs copied to the
// host. The peer script's --mode encode does the same under torch.inference_mode().
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../bench_args.hpp"
#include "vts/hash/heads.hpp"
#include "vts/hash/losses.hpp"
#include "vts/nn/vit.hpp"
#include "vts/optim/optim.hpp"
#include "vts/vts.hpp"
#if defined(VTS_WITH_CUDA)
#include "vts/backend/cuda/activation.hpp"
#include "vts/backend/cuda/attention.hpp"
#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/layer_norm.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/nn/captured.hpp"
#endif

namespace {

struct Args {
  std::string config = "tiny";
  int64_t batch = 64;
  int steps = 10;
  int warmup = 2;
  int profile_steps = 0;
  int threads = 0;
  std::string device = "cpu";
  std::string gemm = "tf32";  // CUDA fp32 GEMMs: tf32, bf16 (tensor cores on fp32 data) or fp32
  std::string precision = "fp32";  // fp32 | bf16 (CUDA)
  bool cuda_graphs = false;
  std::string attention_bwd = "default";  // default | split | one_barrier | wgmma (CUDA bf16 backward)
  bool keep_dropout_mask = false;          // CUDA: gelu_dropout keeps its mask as bits
  bool hopper_attention = false;           // CUDA bf16: the wgmma attention kernels where they apply
  std::string attention_f32 = "default";   // default | fused | composite (CUDA fp32 attention)
  std::string attention_fwd = "default";   // CUDA bf16: comma list picking the attention forward
  std::string layer_norm = "default";      // CUDA: comma list of LayerNorm launch candidates
  std::vector<std::string> attention_fwd_items, layer_norm_items;  // the two lists, checked
  std::string mode = "train";  // train | encode
  std::string label;           // --label: copied into the JSON line
};

// A flag whose value must be one of `choices`: otherwise a message naming them, and exit status 2.
void expect_choice(const char* flag, const std::string& value, std::initializer_list<const char*> choices) {
  std::string list;
  size_t i = 0;
  for (const char* c : choices) {
    if (value == c) return;
    list += std::string(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + c;
    ++i;
  }
  std::fprintf(stderr, "vts_bench_train: %s must be %s, got '%s'\n", flag, list.c_str(), value.c_str());
  std::exit(2);
}

// A flag whose value is "default" or a comma-separated list of `choices` (each at most once): the
// list, or a message naming them and exit status 2.
std::vector<std::string> expect_list(const char* flag, const std::string& value,
                                     const std::vector<const char*>& choices) {
  std::vector<std::string> items;
  if (value == "default") return items;
  size_t start = 0;
  while (true) {
    const size_t comma = value.find(',', start);
    const std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const bool known = std::any_of(choices.begin(), choices.end(), [&](const char* c) { return item == c; });
    if (!known || std::find(items.begin(), items.end(), item) != items.end()) {
      std::string list;
      for (const char* c : choices) list += std::string(list.empty() ? "" : ", ") + c;
      std::fprintf(stderr, "vts_bench_train: %s must be default or a comma-separated list of %s (each once), got '%s'\n",
                   flag, list.c_str(), value.c_str());
      std::exit(2);
    }
    items.push_back(item);
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}
bool has(const std::vector<std::string>& items, const char* item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// The flags, for --help (stdout, exit status 0) and before an unknown flag's error (stderr).
void print_usage(std::FILE* to) {
  std::fputs(
      "usage: vts_bench_train [--config tiny|small|b16|b32] [--batch B] [--steps S] [--warmup W] "
      "[--threads T] [--device cpu|cuda] [--gemm tf32|bf16|fp32] [--precision fp32|bf16] "
      "[--profile-steps K] [--cuda-graphs] [--attention-bwd default|split|one_barrier|wgmma] "
      "[--hopper-attention] [--attention-f32 fused|composite|skip_padding] [--keep-dropout-mask] "
      "[--attention-fwd LIST] [--layer-norm LIST] [--mode train|encode] [--label NAME]\n"
      "(the flags are described at the top of benchmarks/train/vts_bench_train.cpp)\n",
      to);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vts_bench_train: %s expects a value\n", flag.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&] { return vts_bench::whole_number_flag("vts_bench_train", flag, value()); };
    if (flag == "--config") a.config = value();
    else if (flag == "--batch") a.batch = number();
    else if (flag == "--steps") a.steps = number();
    else if (flag == "--warmup") a.warmup = number();
    else if (flag == "--profile-steps") a.profile_steps = number();
    else if (flag == "--threads") a.threads = number();
    else if (flag == "--device") a.device = value();
    else if (flag == "--gemm") a.gemm = value();
    else if (flag == "--precision") a.precision = value();
    else if (flag == "--cuda-graphs") a.cuda_graphs = true;
    else if (flag == "--attention-bwd") a.attention_bwd = value();
    else if (flag == "--keep-dropout-mask") a.keep_dropout_mask = true;
    else if (flag == "--hopper-attention") a.hopper_attention = true;
    else if (flag == "--attention-f32") a.attention_f32 = value();
    else if (flag == "--attention-fwd") a.attention_fwd = value();
    else if (flag == "--layer-norm") a.layer_norm = value();
    else if (flag == "--mode") a.mode = value();
    else if (flag == "--label") a.label = value();
    else if (flag == "--help" || flag == "-h") {
      print_usage(stdout);
      std::exit(0);
    } else {
      print_usage(stderr);
      std::fprintf(stderr, "vts_bench_train: unknown flag '%s'\n", flag.c_str());
      std::exit(2);
    }
  }
  expect_choice("--gemm", a.gemm, {"tf32", "bf16", "fp32"});
  expect_choice("--attention-bwd", a.attention_bwd, {"default", "split", "one_barrier", "wgmma"});
  if (a.attention_bwd != "default" && (a.device != "cuda" || a.precision != "bf16")) {
    std::fprintf(stderr, "vts_bench_train: --attention-bwd %s picks a kernel of the CUDA bf16 attention; it needs "
                         "--device cuda --precision bf16\n", a.attention_bwd.c_str());
    std::exit(2);
  }
  expect_choice("--attention-f32", a.attention_f32, {"default", "fused", "composite", "skip_padding"});
  if (a.attention_f32 != "default" && (a.device != "cuda" || a.precision != "fp32")) {
    std::fprintf(stderr, "vts_bench_train: --attention-f32 %s picks how the CUDA fp32 attention runs; it needs "
                         "--device cuda and --precision fp32\n", a.attention_f32.c_str());
    std::exit(2);
  }
  std::vector<const char*> fwd_switches, fwd_items;
#if defined(VTS_WITH_CUDA)
  for (const auto& sw : vts::cuda::kAttentionForwardSwitches) fwd_switches.push_back(sw.name);
#endif
  fwd_items = fwd_switches;
  for (const char* other : {"rows128", "warp32", "wgmma", "blocks3"}) fwd_items.push_back(other);
  a.attention_fwd_items = expect_list("--attention-fwd", a.attention_fwd, fwd_items);
  if (a.hopper_attention) {
    if (a.device != "cuda" || a.precision != "bf16" || a.attention_bwd != "default" || a.attention_fwd != "default") {
      std::fprintf(stderr, "vts_bench_train: --hopper-attention picks the CUDA bf16 attention kernels; it needs --device "
                           "cuda --precision bf16 and no --attention-bwd or --attention-fwd\n");
      std::exit(2);
    }
    a.attention_fwd = "wgmma";
    a.attention_fwd_items = {"wgmma"};
    a.attention_bwd = "wgmma";
  }
  const auto& fwd = a.attention_fwd_items;
  if (!fwd.empty() && (a.device != "cuda" || a.precision != "bf16")) {
    std::fprintf(stderr, "vts_bench_train: --attention-fwd picks the CUDA bf16 attention forward; it needs --device "
                         "cuda --precision bf16\n");
    std::exit(2);
  }
  const bool any_switch =
      std::any_of(fwd_switches.begin(), fwd_switches.end(), [&](const char* sw) { return has(fwd, sw); });
  const bool other_shape = has(fwd, "rows128") || has(fwd, "warp32");
  if (has(fwd, "wgmma") ? fwd.size() != (has(fwd, "blocks3") ? 2u : 1u) : has(fwd, "blocks3")) {
    std::fprintf(stderr, "vts_bench_train: --attention-fwd wgmma (the Hopper forward) takes only blocks3 beside it, and "
                         "blocks3 needs wgmma; got '%s'\n", a.attention_fwd.c_str());
    std::exit(2);
  }
  if (any_switch && other_shape) {
    std::fprintf(stderr, "vts_bench_train: --attention-fwd: the tile-code switches apply to the default block shape "
                         "only, not with rows128 or warp32; got '%s'\n", a.attention_fwd.c_str());
    std::exit(2);
  }
  a.layer_norm_items = expect_list("--layer-norm", a.layer_norm, {"rows2", "shared", "fold", "prefetch"});
  const auto& ln = a.layer_norm_items;
  if (!ln.empty() && a.device != "cuda") {
    std::fprintf(stderr, "vts_bench_train: --layer-norm picks CUDA LayerNorm launches; it needs --device cuda\n");
    std::exit(2);
  }
  if (has(ln, "shared") && has(ln, "prefetch")) {
    std::fprintf(stderr, "vts_bench_train: --layer-norm shared and prefetch exclude each other (both take the shared "
                         "memory)\n");
    std::exit(2);
  }
  if (a.keep_dropout_mask && a.device != "cuda") {
    std::fprintf(stderr, "vts_bench_train: --keep-dropout-mask picks a CUDA kernel pair; it needs --device cuda\n");
    std::exit(2);
  }
  expect_choice("--mode", a.mode, {"train", "encode"});
  if (a.mode == "encode" && a.cuda_graphs) {
    std::fprintf(stderr, "vts_bench_train: --cuda-graphs captures training steps; it does not apply to --mode encode\n");
    std::exit(2);
  }
  expect_choice("--precision", a.precision, {"fp32", "bf16"});
  if (a.precision == "bf16" && a.device != "cuda") {
    std::fprintf(stderr, "vts_bench_train: --precision bf16 needs --device cuda (the CPU computes in fp32)\n");
    std::exit(2);
  }
  if (a.batch <= 0 || a.steps <= 0) {
    std::fprintf(stderr, "vts_bench_train: --batch and --steps must be positive, got --batch %lld --steps %d\n",
                 static_cast<long long>(a.batch), a.steps);
    std::exit(2);
  }
  if (a.warmup < 0 || a.profile_steps < 0) {
    std::fprintf(stderr, "vts_bench_train: --warmup and --profile-steps must not be negative, got --warmup %d "
                         "--profile-steps %d\n", a.warmup, a.profile_steps);
    std::exit(2);
  }
  // A negative count used to fall through to the default (every core) and time a full run under a
  // thread count nobody asked for.
  if (a.threads < 0) {
    std::fprintf(stderr, "vts_bench_train: --threads must be 0 (the OpenMP default) or positive, got %d\n", a.threads);
    std::exit(2);
  }
  if (a.cuda_graphs && a.device != "cuda") {
    std::fprintf(stderr, "vts_bench_train: --cuda-graphs needs --device cuda\n");
    std::exit(2);
  }
  auto label_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; };
  if (!std::all_of(a.label.begin(), a.label.end(), label_char)) {
    std::fprintf(stderr, "vts_bench_train: --label takes letters, digits, _ and -, got '%s'\n", a.label.c_str());
    std::exit(2);
  }
  if (a.profile_steps > 0 && a.device != "cuda") {
    std::fprintf(stderr, "vts_bench_train: --profile-steps profiles the CUDA stream; it needs --device cuda\n");
    std::exit(2);
  }
  return a;
}

// Waits for the device's queued work, so a step's time is its whole execution.
template <class D>
void wait_for_device() {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, vts::Cuda>) vts::cuda::synchronize();
#endif
}

// On CUDA, whether the linear layers' GEMMs may use cuBLASLt's bias epilogues (VTS_GEMM_EPILOGUES)
// and how many calls fell back to the separate passes (0 when the card's cuBLASLt takes them all),
// as JSON fields; nothing on the CPU.
template <class D>
std::string epilogue_fallbacks_field() {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, vts::Cuda>)
    return std::string(", \"gemm_epilogues\": ") + (vts::cuda::gemm_epilogues() ? "true" : "false") +
           ", \"gemm_epilogue_fallbacks\": " + std::to_string(vts::cuda::gemm_epilogue_fallbacks());
#endif
  return "";
}

// CUDA: the device memory the caching allocator holds after the timed steps (handed out, cached
// and in the graphs' pools — it returns none of it to the driver) and the most it had handed out at
// once, in MiB; nothing on the CPU. What the captured graphs cost: --cuda-graphs against without.
template <class D>
std::string device_memory_field() {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, vts::Cuda>) {
    const vts::cuda::MemoryStats m = vts::cuda::memory_stats();
    const double mib = 1024.0 * 1024.0;
    char buf[128];
    std::snprintf(buf, sizeof buf, ", \"device_held_mib\": %.1f, \"device_peak_allocated_mib\": %.1f",
                  static_cast<double>(m.allocated_bytes + m.cached_bytes + m.graph_pool_bytes) / mib,
                  static_cast<double>(m.peak_allocated_bytes) / mib);
    return buf;
  }
#endif
  return "";
}

// The kernel settings the step ran with, as JSON fields read from the library (so a step without
// flags reports the defaults as they are), each left out where it has its long-standing default:
// "attention" — fp32 "composite"; bf16 the backward, "fused, split backward", "fused, one-barrier
// backward", "fused, wgmma backward", or "fused, wgmma" when both are the Hopper kernels (then no
// wgmma in "attention_fwd"); "attention_fwd" — the forward's settings in --attention-fwd's names;
// "layer_norm" — the LayerNorm launches in --layer-norm's names; "dropout_mask" — "kept". Where a
// Hopper kernel is on, whether the config's attention shape (tokens, head dim) takes it here.
template <class Cfg, class T, class D>
std::string kernel_setting_fields() {
  std::string f;
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, vts::Cuda>) {
    namespace c = vts::cuda;
    auto join = [](const std::vector<std::string>& items) {
      std::string out;
      for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
      return out;
    };
    if constexpr (std::is_same_v<T, vts::bf16>) {
      const bool fwd_wgmma = c::attention_bf16_forward_wgmma(), bwd_wgmma = c::attention_bf16_backward_wgmma();
      const bool both_wgmma = fwd_wgmma && bwd_wgmma && c::attention_bf16_forward_wgmma_blocks() != 3;
      if (both_wgmma) f += ", \"attention\": \"fused, wgmma\"";
      else if (bwd_wgmma) f += ", \"attention\": \"fused, wgmma backward\"";
      else if (c::attention_bf16_backward_split()) f += ", \"attention\": \"fused, split backward\"";
      else if (c::attention_bf16_backward_barriers() == 1) f += ", \"attention\": \"fused, one-barrier backward\"";
      std::vector<std::string> fwd;
      for (const auto& sw : c::kAttentionForwardSwitches)
        if (sw.get()) fwd.emplace_back(sw.name);
      if (c::attention_bf16_forward_rows() == 128) fwd.emplace_back("rows128");
      if (c::attention_bf16_forward_warp_rows() == 32) fwd.emplace_back("warp32");
      if (fwd_wgmma && !both_wgmma) fwd.emplace_back("wgmma");
      if (fwd_wgmma && c::attention_bf16_forward_wgmma_blocks() == 3) fwd.emplace_back("blocks3");
      if (!fwd.empty()) f += ", \"attention_fwd\": \"" + join(fwd) + "\"";
      if (fwd_wgmma || bwd_wgmma) {
        const bool applies =
            c::attention_bf16_wgmma_supported(vts::nn::ViT<Cfg, float, D>::tokens, Cfg::dim / Cfg::heads);
        f += std::string(", \"wgmma_applies\": ") + (applies ? "true" : "false");
      }
    } else if (c::attention_f32_composite()) {
      f += ", \"attention\": \"composite\"";
    } else if (c::attention_f32_skip_padding()) {
      f += ", \"attention\": \"fused, skip padding\"";
    }
    if (c::gelu_dropout_keep_mask()) f += ", \"dropout_mask\": \"kept\"";
    std::vector<std::string> ln;
    if (c::layer_norm_forward_launch().rows_per_warp == 2) ln.emplace_back("rows2");
    const c::LayerNormBackwardLaunch bwd = c::layer_norm_backward_launch();
    if (bwd.shared_sums) ln.emplace_back("shared");
    if (bwd.fold_by_class) ln.emplace_back("fold");
    if (bwd.prefetch_rows) ln.emplace_back("prefetch");
    if (!ln.empty()) f += ", \"layer_norm\": \"" + join(ln) + "\"";
  }
#endif
  return f;
}

// Runs `step` a.profile_steps times under the op profiler (CUDA only) and prints one JSON line per
// op name, most time first: calls and milliseconds per step, share of the profiled time.
template <class D, class Step>
void print_profile([[maybe_unused]] const Args& a, [[maybe_unused]] const char* precision,
                   [[maybe_unused]] Step& step) {
#if defined(VTS_WITH_CUDA)
  if constexpr (std::is_same_v<D, vts::Cuda>) {
    vts::cuda::synchronize();
    vts::cuda::profile_start();
    for (int s = 0; s < a.profile_steps; ++s) step();
    const auto entries = vts::cuda::profile_stop();
    double total = 0;
    for (const auto& e : entries) total += e.ms;
    const double k = a.profile_steps;
    for (const auto& e : entries) {
      std::string name;  // JSON-escaped: names hold only printable characters, '"' and '\\' aside
      for (const char c : e.name) {
        if (c == '"' || c == '\\') name += '\\';
        name += c;
      }
      std::printf(
          "{\"profile\": \"%s\", \"config\": \"%s\", \"batch\": %lld, \"precision\": \"%s\", \"cuda_graphs\": %s, "
          "\"calls_per_step\": %.2f, \"ms_per_step\": %.4f, \"share\": %.4f, \"profiled_ms_per_step\": %.3f}\n",
          name.c_str(), a.config.c_str(), static_cast<long long>(a.batch), precision,
          a.cuda_graphs ? "true" : "false", static_cast<double>(e.calls) / k,
          e.ms / k, total > 0 ? e.ms / total : 0.0, total / k);
    }
  }
#endif
}

// --cuda-graphs: the step's forward and backward through nn::CapturedNetwork once one step has run
// op by op (its lazy set-up is not to be captured). Does nothing on the CPU or without the flag.
template <class Net, class D>
class GraphedStep {
 public:
  GraphedStep(Net& net, bool on) : net_(net), on_(on) {}
  // One step's forward, loss and backward through the graphs; false: run it op by op.
  template <class LossOf, class ZeroGrad>
  bool step([[maybe_unused]] const typename Net::tensor_type& x, [[maybe_unused]] vts::nn::Context& ctx,
            [[maybe_unused]] LossOf&& loss_of, [[maybe_unused]] ZeroGrad&& zero_grad) {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, vts::Cuda>) {
      if (!on_) return false;
      if (!captured_) captured_ = std::make_unique<vts::nn::CapturedNetwork<Net, vts::Tensor<float, D>>>(net_);
      if (!captured_->use_for(x)) return false;
      const auto u = captured_->forward(x, ctx);
      const auto l = loss_of(u);
      zero_grad();
      l.backward();
      captured_->backward(u);
      return true;
    }
#endif
    return false;
  }
  std::string json_field() const {
#if defined(VTS_WITH_CUDA)
    if constexpr (std::is_same_v<D, vts::Cuda>)
      return std::string(", \"cuda_graphs\": ") + (on_ ? "true" : "false") +
             ", \"graph_nodes\": " + std::to_string(captured_ ? captured_->nodes() : 0);
#endif
    return "";
  }

 private:
  [[maybe_unused]] Net& net_;
  bool on_;
#if defined(VTS_WITH_CUDA)
  struct None {};
  std::conditional_t<std::is_same_v<D, vts::Cuda>,
                     std::unique_ptr<vts::nn::CapturedNetwork<Net, vts::Tensor<float, D>>>, None>
      captured_;
#endif
};

// The "gemm" field of the JSON: which library multiplies matrices (CPU) or the CUDA GEMM mode.
template <class T, class D>
const char* gemm_name(const Args& a) {
  if constexpr (vts::is_cpu_v<D>) return vts::cpu::gemm_name();
  else return std::is_same_v<T, vts::bf16> ? "bf16" : a.gemm.c_str();
}

// On the CPU, the GEMM library with its version and kernels (cpu::gemm_library()) as a JSON field:
// an OpenBLAS build's speed depends on which kernels it picked; nothing on CUDA.
template <class D>
std::string gemm_library_field() {
  if constexpr (vts::is_cpu_v<D>) return ", \"gemm_library\": \"" + vts::cpu::gemm_library() + "\"";
  else return "";
}

// Milliseconds of `body` (a training step or an encode batch), sorted: --warmup untimed runs, then
// --steps timed ones, each between two waits for the device so that its whole execution counts.
template <class D, class Body>
std::vector<double> time_steps(const Args& a, Body&& body) {
  std::vector<double> ms;
  for (int s = 0; s < a.warmup + a.steps; ++s) {
    wait_for_device<D>();
    const auto t0 = std::chrono::steady_clock::now();
    body();
    wait_for_device<D>();
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (s >= a.warmup) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

// `, "label": NAME` for --label, nothing without it.
std::string label_field(const Args& a) { return a.label.empty() ? "" : ", \"label\": \"" + a.label + "\""; }

// --mode encode: hash::encode's work for one batch (evaluation mode, no graph, outputs to the
// host, which also waits for the device).
template <class Config, class T, class D, class Net>
int run_encode(const Args& a, Net& net, vts::Generator& gen) {
  using namespace vts;
  auto x = Tensor<T, D>::empty(Shape{a.batch, Config::channels, Config::image, Config::image});
  nn::init::normal_(x, 0.0, 1.0, gen);
  NoGradGuard no_grad;
  nn::Context ctx{false, &gen};
  double checksum = 0;  // of the outputs, so that no part of the work can be skipped
  const std::vector<double> ms = time_steps<D>(a, [&] {
    const std::vector<T> u = net.forward(x, ctx).to_vector();
    checksum += static_cast<double>(static_cast<float>(u.front()));
  });
  const double median = vts_bench::median_of_sorted(ms);
  std::printf(
      "{\"impl\": \"vts\", \"mode\": \"encode\", \"device\": \"%s\", \"precision\": \"%s\", \"gemm\": \"%s\", \"config\": \"%s\", "
      "\"batch\": %lld, \"threads\": %d, \"steps\": %d, \"step_ms_median\": %.3f, \"step_ms_min\": %.3f, "
      "\"imgs_per_s\": %.2f, \"params\": %lld, \"checksum\": %.6g%s%s}\n",
      D::name, std::is_same_v<T, bf16> ? "bf16" : "fp32", gemm_name<T, D>(a), a.config.c_str(),
      static_cast<long long>(a.batch), vts::cpu::max_threads(), a.steps, median, ms.front(), 1000.0 * static_cast<double>(a.batch) / median,
      static_cast<long long>(nn::parameter_count(net)), checksum, gemm_library_field<D>().c_str(),
      label_field(a).c_str());
  return 0;
}

// T: the network's element type (float, or bf16 with fp32 masters in the optimizer). The loss is
// always computed in fp32.
template <class Config, class T, class D>
int run(const Args& a) {
  using namespace vts;
  Generator gen(7);
  hash::HashNetwork<nn::ViT<Config, T, D>, hash::AllTokenHead<1024, T, D>> net(64, gen);
  if (a.mode == "encode") return run_encode<Config, T, D>(a, net, gen);
  hash::loss::Config cfg;
  cfg.bits = 64;
  cfg.classes = 10;
  cfg.train_size = a.batch;
  hash::loss::Csq<float, D> loss(cfg, gen);
  optim::Adam<T, D> opt(nn::parameters(net), {.lr = 1e-4});
  auto x = Tensor<T, D>::empty(Shape{a.batch, Config::channels, Config::image, Config::image});
  nn::init::normal_(x, 0.0, 1.0, gen);
  std::vector<float> labels(static_cast<size_t>(a.batch * 10), 0.0f);
  std::vector<int64_t> indices(static_cast<size_t>(a.batch));
  for (int64_t i = 0; i < a.batch; ++i) {
    labels[static_cast<size_t>(i * 10 + i % 10)] = 1.0f;
    indices[static_cast<size_t>(i)] = i;
  }
  const auto y = Tensor<float, D>::from_vector(labels, Shape{a.batch, 10});
  nn::Context ctx{true, &gen};
  GraphedStep<decltype(net), D> graphed(net, a.cuda_graphs);
  auto step = [&] {
    // The labels on the host too, as the trainer passes them: CSQ's centers need no read-back.
    auto loss_of = [&](const Tensor<float, D>& u) { return loss(u, y, indices, 0, std::span<const float>(labels)); };
    if (!graphed.step(x, ctx, loss_of, [&] { opt.zero_grad(); })) {
      const auto l = loss_of(cast<float>(net.forward(x, ctx)));
      opt.zero_grad();
      l.backward();
    }
    opt.step();
  };
  const std::vector<double> ms = time_steps<D>(a, step);
  const double median = vts_bench::median_of_sorted(ms);
  std::printf(
      "{\"impl\": \"vts\", \"mode\": \"train\", \"device\": \"%s\", \"precision\": \"%s\", \"gemm\": \"%s\", \"config\": \"%s\", \"batch\": %lld, \"threads\": %d, \"steps\": %d, \"step_ms_median\": %.3f, "
      "\"step_ms_min\": %.3f, \"imgs_per_s\": %.2f, \"params\": %lld%s%s%s%s%s}\n",
      D::name, std::is_same_v<T, bf16> ? "bf16" : "fp32",
      gemm_name<T, D>(a), a.config.c_str(), static_cast<long long>(a.batch), vts::cpu::max_threads(), a.steps, median, ms.front(),
      1000.0 * static_cast<double>(a.batch) / median, static_cast<long long>(nn::parameter_count(net)),
      epilogue_fallbacks_field<D>().c_str(), graphed.json_field().c_str(), gemm_library_field<D>().c_str(),
      device_memory_field<D>().c_str(),
      (kernel_setting_fields<Config, T, D>() + label_field(a)).c_str());
  if (a.profile_steps > 0) print_profile<D>(a, std::is_same_v<T, bf16> ? "bf16" : "fp32", step);
  return 0;
}

template <class T, class D>
int run_config(const Args& a) {
  if (a.config == "tiny") return run<vts::nn::ViTTiny28, T, D>(a);
  if (a.config == "small") return run<vts::nn::ViTSmall32, T, D>(a);
  if (a.config == "b16") return run<vts::nn::ViTB16, T, D>(a);
  if (a.config == "b32") return run<vts::nn::ViTB32, T, D>(a);
  std::fprintf(stderr, "vts_bench_train: --config must be tiny, small, b16 or b32, got '%s'\n", a.config.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.threads > 0) vts::cpu::set_num_threads(a.threads);
  try {
    if (a.device == "cpu") return run_config<float, vts::Cpu>(a);
    if (a.device == "cuda") {
#if defined(VTS_WITH_CUDA)
      if (!vts::cuda::available()) {
        std::fprintf(stderr, "vts_bench_train: --device cuda: %s\n", vts::cuda::unavailable_reason().c_str());
        return 77;
      }
      vts::cuda::set_fp32_gemm(vts::cuda::fp32_gemm_from_string(a.gemm));
      // A kernel setting stays at the library's default unless its flag was given (the flag then sets
      // all of its part: --attention-fwd's unlisted switches off, --layer-norm's unlisted launch
      // fields at their defaults), so a step without flags times the defaults as they are — also
      // after a candidate has become one. The JSON line reports the settings as they are.
      if (a.attention_bwd != "default") {
        vts::cuda::set_attention_bf16_backward_split(a.attention_bwd == "split");
        vts::cuda::set_attention_bf16_backward_barriers(a.attention_bwd == "one_barrier" ? 1 : 2);
        vts::cuda::set_attention_bf16_backward_wgmma(a.attention_bwd == "wgmma");
      }
      if (a.keep_dropout_mask) vts::cuda::set_gelu_dropout_keep_mask(true);
      if (a.attention_f32 != "default") {
        vts::cuda::set_attention_f32_composite(a.attention_f32 == "composite");
        vts::cuda::set_attention_f32_skip_padding(a.attention_f32 == "skip_padding");
      }
      if (a.attention_fwd != "default") {
        const auto& fwd = a.attention_fwd_items;
        vts::cuda::set_attention_bf16_forward_wgmma(has(fwd, "wgmma"));
        vts::cuda::set_attention_bf16_forward_wgmma_blocks(has(fwd, "blocks3") ? 3 : 2);
        vts::cuda::set_attention_bf16_forward_rows(has(fwd, "rows128") ? 128 : 64);
        vts::cuda::set_attention_bf16_forward_warp_rows(has(fwd, "warp32") ? 32 : 16);
        for (const auto& sw : vts::cuda::kAttentionForwardSwitches) sw.set(has(fwd, sw.name));
      }
      if (a.layer_norm != "default") {
        const auto& ln = a.layer_norm_items;
        vts::cuda::set_layer_norm_forward_launch({.rows_per_warp = has(ln, "rows2") ? 2 : 1});
        vts::cuda::LayerNormBackwardLaunch ln_bwd;
        if (has(ln, "shared")) {
          ln_bwd.blocks_per_sm = 3;
          ln_bwd.shared_sums = true;
        }
        ln_bwd.fold_by_class = has(ln, "fold");
        ln_bwd.prefetch_rows = has(ln, "prefetch");
        vts::cuda::set_layer_norm_backward_launch(ln_bwd);
      }
      if (a.precision == "bf16") return run_config<vts::bf16, vts::Cuda>(a);
      return run_config<float, vts::Cuda>(a);
#else
      std::fprintf(stderr, "vts_bench_train: --device cuda needs a build with vts::cuda (-DVTS_CUDA=ON)\n");
      return 2;
#endif
    }
    std::fprintf(stderr, "vts_bench_train: --device must be cpu or cuda, got '%s'\n", a.device.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vts_bench_train: %s\n", e.what());
    return 1;
  }
}
