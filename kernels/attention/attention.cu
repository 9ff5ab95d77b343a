// Attention launchers: argument checks, then dispatch on dtype and head dim to the kernels in
// attention_{fwd,bwd}_{f32,bf16}.cu (design notes at the top of each).
#include <atomic>

#include "attention/attention.cuh"

namespace vts::cuda {

namespace {

std::atomic<int> g_bf16_forward_rows{0};  // 0: the kernel's default
std::atomic<int> g_bf16_forward_warp_rows{0};
std::atomic<bool> g_bf16_forward_narrow_last_tile{false};
std::atomic<bool> g_bf16_forward_mask_last_tile_only{false};
std::atomic<bool> g_bf16_forward_unrolled_loads{false};
std::atomic<bool> g_bf16_forward_fold_scale{false};
std::atomic<bool> g_f32_composite{false};
std::atomic<bool> g_f32_skip_padding{false};
std::atomic<bool> g_bf16_forward_wgmma{false};
std::atomic<bool> g_bf16_backward_wgmma{false};
std::atomic<int> g_bf16_forward_wgmma_blocks{0};  // 0: the kernel's default (2)
std::atomic<int> g_bf16_backward_barriers{0};
std::atomic<bool> g_bf16_backward_split{false};

using attn::BwdArgs;
using attn::FwdArgs;

template <class T>
constexpr int kRowAlign = 16 / static_cast<int>(sizeof(T));  // elements per 16 bytes

template <class T>
void check_layout(const HeadLayout<T>& l, const char* name, const char* fn) {
  using E = std::remove_const_t<T>;
  VTS_CHECK(l.data != nullptr, fn, ": ", name, " is null");
  VTS_CHECK(detail::aligned16(l.data) && l.sb % kRowAlign<E> == 0 && l.sh % kRowAlign<E> == 0 &&
                l.sn % kRowAlign<E> == 0,
            fn, ": ", name, " rows must be 16-byte aligned (pointer and strides sb=", l.sb, ", sh=", l.sh,
            ", sn=", l.sn, " multiples of ", kRowAlign<E>, " elements)");
}

void check_sizes(int64_t B, int64_t H, int64_t N, const char* fn) {
  VTS_CHECK(B >= 0 && H >= 0 && N >= 0, fn, ": negative size B=", B, " H=", H, " N=", N);
  VTS_CHECK(B <= 65535 && H <= 65535 && N < (int64_t(1) << 24), fn, ": sizes out of range B=", B, " H=", H,
            " N=", N, " (at most 65535 batches and heads)");
}

// Each entry point's checks after its sizes: every head layout, then the log-sum-exp pointer (the
// backward's o is read, the forward's written: O is either layout).
template <class T, class O>
void check_forward_args(const char* fn, const HeadLayout<const T>& q, const HeadLayout<const T>& k,
                        const HeadLayout<const T>& v, const O& o, const float* lse) {
  check_layout(q, "q", fn);
  check_layout(k, "k", fn);
  check_layout(v, "v", fn);
  check_layout(o, "o", fn);
  VTS_CHECK(lse != nullptr, fn, ": lse is null");
}
template <class T>
void check_backward_args(const char* fn, const HeadLayout<const T>& q, const HeadLayout<const T>& k,
                         const HeadLayout<const T>& v, const HeadLayout<const T>& o, const float* lse,
                         const HeadLayout<const T>& dout, const HeadLayout<T>& dq, const HeadLayout<T>& dk,
                         const HeadLayout<T>& dv) {
  check_forward_args(fn, q, k, v, o, lse);
  check_layout(dout, "dout", fn);
  check_layout(dq, "dq", fn);
  check_layout(dk, "dk", fn);
  check_layout(dv, "dv", fn);
}

template <class D>
HeadLayout<const D> as_dev(HeadLayout<const bf16> l) {
  return {reinterpret_cast<const D*>(l.data), l.sb, l.sh, l.sn};
}
template <class D>
HeadLayout<D> as_dev(HeadLayout<bf16> l) {
  return {reinterpret_cast<D*>(l.data), l.sb, l.sh, l.sn};
}

[[noreturn]] void unsupported_d(const char* fn, int64_t d, const char* supported) {
  throw Error(::vts::detail::concat(fn, ": head dim ", d, " is not built; supported: ", supported));
}

}  // namespace

bool attention_supported(AttentionDtype dtype, bool backward, int64_t N, int64_t d) {
  if (N < 0) return false;
  if (dtype == AttentionDtype::bf16 && backward) return d == 16 || d == 32 || d == 64;
  return d == 16 || d == 32 || d == 64 || d == 128;
}

void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const float> q,
                       HeadLayout<const float> k, HeadLayout<const float> v, HeadLayout<float> o, float* lse) {
  const char* fn = "vts::cuda::attention_forward (fp32)";
  check_sizes(B, H, N, fn);
  if (B == 0 || H == 0 || N == 0) return;
  check_forward_args(fn, q, k, v, o, lse);
  const FwdArgs<float> a{q, k, v, o, lse, int(B), int(H), int(N), scale};
  const bool skip = attention_f32_skip_padding();
  switch (d) {
    case 16: return attn::forward_f32<16>(a, skip);
    case 32: return attn::forward_f32<32>(a, skip);
    case 64: return attn::forward_f32<64>(a, skip);
    case 128: return attn::forward_f32<128>(a, skip);
    default: unsupported_d(fn, d, "16, 32, 64, 128");
  }
}

void set_attention_bf16_forward_rows(int rows) {
  VTS_CHECK(rows == 0 || rows == 64 || rows == 128,
            "vts::cuda::set_attention_bf16_forward_rows: expected 0 (default), 64 or 128 rows, found ", rows);
  g_bf16_forward_rows.store(rows, std::memory_order_relaxed);
}
int attention_bf16_forward_rows() { return g_bf16_forward_rows.load(std::memory_order_relaxed); }

void set_attention_bf16_forward_warp_rows(int rows) {
  VTS_CHECK(rows == 0 || rows == 16 || rows == 32,
            "vts::cuda::set_attention_bf16_forward_warp_rows: expected 0 (default), 16 or 32 rows, found ", rows);
  g_bf16_forward_warp_rows.store(rows, std::memory_order_relaxed);
}
int attention_bf16_forward_warp_rows() { return g_bf16_forward_warp_rows.load(std::memory_order_relaxed); }

void set_attention_bf16_forward_narrow_last_tile(bool on) {
  g_bf16_forward_narrow_last_tile.store(on, std::memory_order_relaxed);
}
bool attention_bf16_forward_narrow_last_tile() {
  return g_bf16_forward_narrow_last_tile.load(std::memory_order_relaxed);
}
void set_attention_bf16_forward_mask_last_tile_only(bool on) {
  g_bf16_forward_mask_last_tile_only.store(on, std::memory_order_relaxed);
}
bool attention_bf16_forward_mask_last_tile_only() {
  return g_bf16_forward_mask_last_tile_only.load(std::memory_order_relaxed);
}
void set_attention_bf16_forward_unrolled_loads(bool on) {
  g_bf16_forward_unrolled_loads.store(on, std::memory_order_relaxed);
}
bool attention_bf16_forward_unrolled_loads() { return g_bf16_forward_unrolled_loads.load(std::memory_order_relaxed); }
void set_attention_bf16_forward_fold_scale(bool on) { g_bf16_forward_fold_scale.store(on, std::memory_order_relaxed); }
bool attention_bf16_forward_fold_scale() { return g_bf16_forward_fold_scale.load(std::memory_order_relaxed); }
void set_attention_f32_composite(bool on) { g_f32_composite.store(on, std::memory_order_relaxed); }
void set_attention_f32_skip_padding(bool on) { g_f32_skip_padding.store(on, std::memory_order_relaxed); }
bool attention_f32_skip_padding() { return g_f32_skip_padding.load(std::memory_order_relaxed); }
bool attention_f32_composite() { return g_f32_composite.load(std::memory_order_relaxed); }

void set_attention_bf16_forward_wgmma(bool on) { g_bf16_forward_wgmma.store(on, std::memory_order_relaxed); }
bool attention_bf16_forward_wgmma() { return g_bf16_forward_wgmma.load(std::memory_order_relaxed); }
void set_attention_bf16_forward_wgmma_blocks(int blocks) {
  VTS_CHECK(blocks == 0 || blocks == 2 || blocks == 3,
            "vts::cuda::set_attention_bf16_forward_wgmma_blocks: expected 0 (default), 2 or 3 blocks per SM, found ",
            blocks);
  g_bf16_forward_wgmma_blocks.store(blocks, std::memory_order_relaxed);
}
int attention_bf16_forward_wgmma_blocks() { return g_bf16_forward_wgmma_blocks.load(std::memory_order_relaxed); }
void set_attention_bf16_backward_wgmma(bool on) { g_bf16_backward_wgmma.store(on, std::memory_order_relaxed); }
bool attention_bf16_backward_wgmma() { return g_bf16_backward_wgmma.load(std::memory_order_relaxed); }
namespace {
// sm_90a code (the Hopper kernels) runs on compute capability 9.0 only.
bool device_runs_sm90a() {
  const DeviceInfo& info = device_info();
  return info.major == 9 && info.minor == 0;
}
}  // namespace
bool attention_bf16_wgmma_supported(int64_t N, int64_t d) {
  return d == 64 && N >= 1 && N <= attn::kWgmmaMaxN && device_runs_sm90a();
}

namespace detail {
void wgmma_layout_check(const uint16_t* a, const uint16_t* b, float* d) {
  if (!device_runs_sm90a()) {
    const DeviceInfo& info = device_info();
    throw CudaError(::vts::detail::concat("vts::cuda::detail::wgmma_layout_check: wgmma is built for sm_90a; the "
                                          "device has compute capability ",
                                          info.major, ".", info.minor),
                    cudaErrorNoKernelImageForDevice);
  }
  attn::wgmma_layout_check(a, b, d);
}
}  // namespace detail

void set_attention_bf16_backward_barriers(int barriers) {
  VTS_CHECK(barriers == 0 || barriers == 1 || barriers == 2,
            "vts::cuda::set_attention_bf16_backward_barriers: expected 0 (default), 1 or 2 barriers per query "
            "block, found ",
            barriers);
  g_bf16_backward_barriers.store(barriers, std::memory_order_relaxed);
}
int attention_bf16_backward_barriers() { return g_bf16_backward_barriers.load(std::memory_order_relaxed); }

void set_attention_bf16_backward_split(bool always) { g_bf16_backward_split.store(always, std::memory_order_relaxed); }
bool attention_bf16_backward_split() { return g_bf16_backward_split.load(std::memory_order_relaxed); }

void attention_forward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const bf16> q,
                       HeadLayout<const bf16> k, HeadLayout<const bf16> v, HeadLayout<bf16> o, float* lse) {
  const char* fn = "vts::cuda::attention_forward (bf16)";
  check_sizes(B, H, N, fn);
  if (B == 0 || H == 0 || N == 0) return;
  check_forward_args(fn, q, k, v, o, lse);
  using D = __nv_bfloat16;
  const FwdArgs<D> a{as_dev<D>(q), as_dev<D>(k), as_dev<D>(v), as_dev<D>(o), lse, int(B), int(H), int(N), scale};
  const int rows = attention_bf16_forward_rows(), warp_rows = attention_bf16_forward_warp_rows();
  const attn::ForwardTileCode code{attention_bf16_forward_narrow_last_tile(),
                                   attention_bf16_forward_mask_last_tile_only(),
                                   attention_bf16_forward_unrolled_loads(),
                                   attention_bf16_forward_fold_scale()};
  if (attention_bf16_forward_wgmma() && attention_bf16_wgmma_supported(N, d))
    return attn::forward_bf16_wgmma(a, attention_bf16_forward_wgmma_blocks() == 3 ? 3 : 2);
  switch (d) {
    case 16: return attn::forward_bf16<16>(a, rows, warp_rows, code);
    case 32: return attn::forward_bf16<32>(a, rows, warp_rows, code);
    case 64: return attn::forward_bf16<64>(a, rows, warp_rows, code);
    case 128: return attn::forward_bf16<128>(a, rows, warp_rows, code);
    default: unsupported_d(fn, d, "16, 32, 64, 128");
  }
}

void attention_backward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const float> q,
                        HeadLayout<const float> k, HeadLayout<const float> v, HeadLayout<const float> o,
                        const float* lse, HeadLayout<const float> dout, HeadLayout<float> dq, HeadLayout<float> dk,
                        HeadLayout<float> dv) {
  const char* fn = "vts::cuda::attention_backward (fp32)";
  check_sizes(B, H, N, fn);
  if (B == 0 || H == 0 || N == 0) return;
  check_backward_args(fn, q, k, v, o, lse, dout, dq, dk, dv);
  const BwdArgs<float> a{q, k, v, o, dout, dq, dk, dv, lse, int(B), int(H), int(N), scale};
  const bool skip = attention_f32_skip_padding();
  switch (d) {
    case 16: return attn::backward_f32<16>(a, skip);
    case 32: return attn::backward_f32<32>(a, skip);
    case 64: return attn::backward_f32<64>(a, skip);
    case 128: return attn::backward_f32<128>(a, skip);
    default: unsupported_d(fn, d, "16, 32, 64, 128");
  }
}

void attention_backward(Device, int64_t B, int64_t H, int64_t N, int64_t d, float scale, HeadLayout<const bf16> q,
                        HeadLayout<const bf16> k, HeadLayout<const bf16> v, HeadLayout<const bf16> o,
                        const float* lse, HeadLayout<const bf16> dout, HeadLayout<bf16> dq, HeadLayout<bf16> dk,
                        HeadLayout<bf16> dv) {
  const char* fn = "vts::cuda::attention_backward (bf16)";
  check_sizes(B, H, N, fn);
  if (B == 0 || H == 0 || N == 0) return;
  check_backward_args(fn, q, k, v, o, lse, dout, dq, dk, dv);
  using D = __nv_bfloat16;
  const BwdArgs<D> a{as_dev<D>(q),    as_dev<D>(k),  as_dev<D>(v),  as_dev<D>(o), as_dev<D>(dout),
                     as_dev<D>(dq),   as_dev<D>(dk), as_dev<D>(dv), lse,          int(B),
                     int(H),          int(N),        scale};
  if (attention_bf16_backward_wgmma() && attention_bf16_wgmma_supported(N, d)) return attn::backward_bf16_wgmma(a);
  if (N > attn::kBf16BwdMaxN || attention_bf16_backward_split()) {
    switch (d) {
      case 16: return attn::backward_bf16_split<16>(a);
      case 32: return attn::backward_bf16_split<32>(a);
      case 64: return attn::backward_bf16_split<64>(a);
      default: unsupported_d(fn, d, "16, 32, 64 (bf16 backward)");
    }
  }
  const int barriers = attention_bf16_backward_barriers();
  switch (d) {
    case 16: return attn::backward_bf16<16>(a, barriers);
    case 32: return attn::backward_bf16<32>(a, barriers);
    case 64: return attn::backward_bf16<64>(a, barriers);
    default: unsupported_d(fn, d, "16, 32, 64 (bf16 backward)");
  }
}

}  // namespace vts::cuda
