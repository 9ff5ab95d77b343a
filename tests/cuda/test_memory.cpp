// Device memory: Tensor<T, vts::Cuda> creation, fill, host copies, strided copies through views,
// the caching allocator (no cudaMalloc per op once warm), pinned buffers, and the op profiler.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>

#include "cuda_test_util.hpp"
#include "vts/backend/cpu/strided.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/profile.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/backend/cuda/upload.hpp"
#include "vts/core/tensor.hpp"
#include "vts/ops/elementwise.hpp"
#include "vts/ops/cast.hpp"
#include "vts/ops/matmul.hpp"

using namespace vts;
using namespace vts::cuda::test;

TEST_CASE("Tensor<float, Cuda>: from_vector, to_vector, full, item, at", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const auto v = rng.normal(3 * 5 * 7);
  auto t = Tensor<float, Cuda>::from_vector(v, Shape{3, 5, 7});
  CHECK(t.to_vector() == v);
  CHECK(t.at({2, 4, 6}) == v.back());
  auto f = Tensor<float, Cuda>::full(Shape{1000}, 2.5f);
  for (float x : f.to_vector()) REQUIRE(x == 2.5f);
  CHECK(Tensor<float, Cuda>::scalar(-3.0f).item() == -3.0f);
  auto z = Tensor<float, Cuda>::zeros(Shape{17, 3});
  for (float x : z.to_vector()) REQUIRE(x == 0.0f);
  // Odd sizes and offsets exercise the fill's unaligned head and tail.
  for (int64_t n : {1, 3, 4, 5, 31, 1027}) {
    auto g = Tensor<float, Cuda>::full(Shape{n}, 7.0f);
    auto s = g.slice(0, n > 1 ? 1 : 0, n);
    s.fill_(-1.0f);
    const auto out = g.to_vector();
    for (int64_t i = 0; i < n; ++i) REQUIRE(out[static_cast<size_t>(i)] == ((i == 0 && n > 1) ? 7.0f : -1.0f));
  }
}

TEST_CASE("Tensor<bf16, Cuda> and int64 storage round-trip", "[memory]") {
  auto b = Tensor<bf16, Cuda>::full(Shape{9, 9}, bf16(1.5f));
  for (bf16 x : b.to_vector()) REQUIRE(static_cast<float>(x) == 1.5f);
  std::vector<bf16> vals(33);
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = bf16(float(i) - 16.0f);
  auto c = Tensor<bf16, Cuda>::from_vector(vals);
  const auto back = c.to_vector();
  for (size_t i = 0; i < vals.size(); ++i) REQUIRE(back[i].bits == vals[i].bits);
  std::vector<int64_t> idx = {1, -2, 3, int64_t(1) << 40};
  cuda::DeviceBuffer d(idx.size() * sizeof(int64_t));
  cuda::copy_from_host(Cuda{}, d.data(), idx.data(), idx.size() * sizeof(int64_t));
  std::vector<int64_t> got(idx.size());
  cuda::copy_to_host(Cuda{}, got.data(), d.data(), got.size() * sizeof(int64_t));
  CHECK(got == idx);
}

TEST_CASE("strided copies through views match the CPU", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const Shape shape{4, 6, 5, 3};
  const auto v = rng.normal(static_cast<size_t>(shape.numel()));
  auto gpu = Tensor<float, Cuda>::from_vector(v, shape);
  auto cpu = Tensor<float, Cpu>::from_vector(v, shape);
  const std::vector<std::vector<int>> perms = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}};
  for (const auto& p : perms) {
    const auto got = gpu.permute(p).contiguous_nograd().to_vector();
    const auto want = cpu.permute(p).contiguous_nograd().to_vector();
    REQUIRE(got == want);
  }
  // Slices with steps, then copy_ into a transposed destination.
  const auto got = gpu.slice(1, 1, 6, 2).slice(2, 0, 5, 3).contiguous_nograd().to_vector();
  const auto want = cpu.slice(1, 1, 6, 2).slice(2, 0, 5, 3).contiguous_nograd().to_vector();
  CHECK(got == want);
  auto dst_g = Tensor<float, Cuda>::full(Shape{3, 5, 6, 4}, NAN);
  auto dst_c = Tensor<float, Cpu>::full(Shape{3, 5, 6, 4}, NAN);
  dst_g.permute({3, 2, 1, 0}).copy_(gpu);
  dst_c.permute({3, 2, 1, 0}).copy_(cpu);
  CHECK(dst_g.to_vector() == dst_c.to_vector());
}

// copy_strided moves two, four or eight neighbours as one wider element where the innermost run is
// contiguous on both sides and the strides and addresses allow, one at a time where they do not:
// views of each kind, fp32 and bf16, against the CPU.
TEST_CASE("strided copies with and without wider elements match the CPU", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const auto check = [&](const Shape& shape, auto&& view, const char* what) {
    INFO(what);
    const auto v = round_bf16(rng.normal(static_cast<size_t>(shape.numel())));  // exact in bf16 too
    const auto want = view(Tensor<float, Cpu>::from_vector(v, shape)).contiguous_nograd().to_vector();
    const auto gpu = Tensor<float, Cuda>::from_vector(v, shape);
    CHECK(view(gpu).contiguous_nograd().to_vector() == want);
    CHECK(to_float(view(cast<bf16>(gpu)).contiguous_nograd().to_vector()) == want);
  };
  // ViT patches (im2col): runs of 16 contiguous on both sides, strides multiples of 16.
  check(Shape{2, 3, 32, 32}, [](auto t) { return t.reshape(Shape{2, 3, 2, 16, 2, 16}).permute({0, 2, 4, 1, 3, 5}); },
        "im2col");
  // A run of 4 under odd outer strides: no widening.
  check(Shape{5, 3, 7}, [](auto t) { return t.slice(2, 0, 4); }, "odd outer strides");
  // A run of 6 starting one element in: misaligned, no widening; then an aligned start.
  check(Shape{9, 8}, [](auto t) { return t.slice(1, 1, 7); }, "misaligned start");
  check(Shape{9, 8}, [](auto t) { return t.slice(0, 1, 9).slice(1, 0, 4); }, "aligned start, run of 4");
  // Widening on the destination side: a contiguous source into the middle of each row.
  const auto v = rng.normal(6 * 16);
  auto dst_g = Tensor<float, Cuda>::full(Shape{6, 32}, NAN);
  auto dst_c = Tensor<float, Cpu>::full(Shape{6, 32}, NAN);
  dst_g.slice(1, 8, 24).copy_(Tensor<float, Cuda>::from_vector(v, Shape{6, 16}));
  dst_c.slice(1, 8, 24).copy_(Tensor<float, Cpu>::from_vector(v, Shape{6, 16}));
  const auto got = dst_g.to_vector(), want = dst_c.to_vector();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE((got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))));
}

TEST_CASE("caching allocator reuses blocks instead of calling cudaMalloc", "[memory]") {
  const size_t sizes[] = {4, 1000, 1 << 20, (1 << 20) + 1, size_t(3) << 20, size_t(37) << 20};
  for (size_t s : sizes) {
    const size_t cls = cuda::allocation_size_class(s);
    CHECK(cls >= s);
    CHECK(cls <= s + s / 4 + 512 + (s > (size_t(16) << 20) ? (size_t(2) << 20) : 0));
  }
  { cuda::DeviceBuffer warm(size_t(5) << 20); }
  const auto before = cuda::memory_stats();
  for (int i = 0; i < 100; ++i) {
    auto t = Tensor<float, Cuda>::empty(Shape{1280, 1024});  // the same 5 MiB every iteration
    (void)t;
  }
  const auto after = cuda::memory_stats();
  CHECK(after.device_malloc_calls == before.device_malloc_calls);
  CHECK(after.cache_hits >= before.cache_hits + 100);
  cuda::empty_cache();
  CHECK(cuda::memory_stats().cached_bytes == 0);
}

TEST_CASE("pinned buffers and asynchronous uploads", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const auto v = rng.normal(1 << 16);
  cuda::PinnedBuffer pinned(v.size() * sizeof(float));
  std::memcpy(pinned.data(), v.data(), v.size() * sizeof(float));
  Buf<float> dev(v.size());
  dev.poison();
  cuda::copy_from_host_async(Cuda{}, dev.data(), pinned.data(), v.size() * sizeof(float));
  cuda::synchronize();
  CHECK(bit_differences(dev.download(), v) == "");
}

TEST_CASE("errors name the call", "[memory]") {
  // An allocation no device can satisfy: cudaMalloc fails (a non-sticky error, so later tests are
  // unaffected), the cache is released and retried once, then CudaError names the call and site.
  bool threw = false;
  try {
    cuda::DeviceBuffer huge(size_t(1) << 52);
  } catch (const cuda::CudaError& e) {
    threw = true;
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("cudaMalloc") != std::string::npos);
    CHECK(what.find("memory.cu") != std::string::npos);
  }
  CHECK(threw);
  // The device is still usable afterwards.
  auto t = Tensor<float, Cuda>::full(Shape{8}, 1.0f);
  CHECK(t.to_vector() == std::vector<float>(8, 1.0f));
}

TEST_CASE("a device vts::cuda cannot use is refused with the reason", "[memory]") {
  CHECK(cuda::available());
  CHECK(cuda::unavailable_reason().empty());
  CHECK(cuda::detail::find_unavailable_reason().empty());
  if (!emulated()) return;  // the rest pretends other devices
  {
    const ScopedEnv none("VTS_EMU_NO_DEVICE", "1");
    CHECK(cuda::detail::find_unavailable_reason() == "no usable CUDA device: no CUDA-capable device is detected");
  }
  {
    const ScopedEnv no_driver("VTS_EMU_DRIVER_VERSION", "0");
    CHECK(cuda::detail::find_unavailable_reason() == "no CUDA device: no NVIDIA driver is installed");
  }
  {
    const ScopedEnv old_driver("VTS_EMU_DRIVER_VERSION", "12040");
    CHECK(cuda::detail::find_unavailable_reason() ==
          "the NVIDIA driver supports CUDA up to 12.4, older than the CUDA 13.0 runtime this vts was built with: "
          "update the driver");
  }
  {
    const ScopedEnv turing("VTS_EMU_COMPUTE_CAPABILITY", "75");
    CHECK_THAT(cuda::detail::find_unavailable_reason(),
               Catch::StartsWith("vts-emu") && Catch::Contains("(sm_75) is older than vts::cuda supports") &&
                   Catch::Contains("compute capability 8.0 or newer"));
  }
  {
    const ScopedEnv ada("VTS_EMU_COMPUTE_CAPABILITY", "89");
    const ScopedEnv no_image("VTS_EMU_NO_KERNEL_IMAGE", "1");
    CHECK_THAT(cuda::detail::find_unavailable_reason(),
               Catch::Contains("has no code") && Catch::Contains("(sm_89) can run") &&
                   Catch::Contains("no kernel image is available") &&
                   Catch::Contains("built for CUDA architectures vts-emu") &&
                   Catch::EndsWith("-DCMAKE_CUDA_ARCHITECTURES=89"));
  }
  CHECK(cuda::detail::find_unavailable_reason().empty());
}

TEST_CASE("staged uploads: two pinned buffers, no synchronisation between batches", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  cuda::StagedUpload upload;
  // Five batches back to back, without a synchronisation: the third and later reuse a buffer, which
  // must wait for the copy that read it. Sizes change, so a buffer also grows on the way.
  std::vector<std::vector<float>> host;
  std::vector<Tensor<float, Cuda>> f32;
  std::vector<Tensor<bf16, Cuda>> b16;
  for (int64_t rows : {64, 64, 200, 17, 200}) {
    host.push_back(rng.normal(static_cast<size_t>(rows * 784)));
    f32.push_back(upload.operator()<float>(host.back().data(), vts::Shape{rows, 1, 28, 28}));
    b16.push_back(upload.operator()<bf16>(host.back().data(), vts::Shape{rows, 784}));
  }
  for (size_t i = 0; i < host.size(); ++i) {
    INFO("batch " << i);
    CHECK(f32[i].to_vector() == host[i]);
    const auto got = b16[i].to_vector();
    REQUIRE(got.size() == host[i].size());
    for (size_t k = 0; k < got.size(); ++k) REQUIRE(got[k].bits == bf16(host[i][k]).bits);
  }
}

TEST_CASE("staged host copies: the source is free on return, the device gets every byte", "[memory]") {
  // More copies than staging buffers, of growing and shrinking sizes, each source overwritten as
  // soon as the call returns; the device sees what the source held at the call.
  std::vector<cuda::DeviceBuffer> dsts;
  std::vector<std::vector<int64_t>> want;
  std::vector<int64_t> src;
  for (int i = 0; i < 11; ++i) {
    const size_t n = static_cast<size_t>(1 + (i * 37) % 300);
    src.assign(n, 0);
    for (size_t k = 0; k < n; ++k) src[k] = int64_t(i) * 1000003 + int64_t(k) - (int64_t(1) << 40);
    dsts.emplace_back(n * sizeof(int64_t));
    cuda::copy_from_host_staged(Cuda{}, dsts.back().data(), src.data(), n * sizeof(int64_t));
    want.push_back(src);
    std::fill(src.begin(), src.end(), -1);
  }
  for (size_t i = 0; i < dsts.size(); ++i) {
    std::vector<int64_t> got(want[i].size());
    cuda::copy_to_host(Cuda{}, got.data(), dsts[i].data(), got.size() * sizeof(int64_t));
    CHECK(got == want[i]);
  }
}

TEST_CASE("the op profiler names and times what the stream ran", "[memory]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  Rng rng(seed);
  const bool on_emu = emulated();
  // A product big enough to stand out from the small ops around it, on either kind of device.
  const int64_t n = on_emu ? 96 : 2048;
  auto a = Tensor<float, Cuda>::from_vector(rng.normal(static_cast<size_t>(n * n)), Shape{n, n});
  auto b = Tensor<float, Cuda>::from_vector(rng.normal(static_cast<size_t>(n * n)), Shape{n, n});
  auto small = Tensor<float, Cuda>::from_vector(rng.normal(8), Shape{8});
  cuda::synchronize();

  auto before = add(small, small);  // not profiled
  cuda::profile_start();
  CHECK(cuda::profiling());
  const auto t0 = std::chrono::steady_clock::now();
  auto s = add(small, small);
  s = mul(s, small);
  auto z = Tensor<float, Cuda>::zeros(Shape{16});  // a memset
  auto p = matmul(a, b);
  // More ops than the profiler keeps events for (4,096) before it reads them back.
  for (int i = 0; i < 5000; ++i) z.fill_(0.0f);
  const auto entries = cuda::profile_stop();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK_FALSE(cuda::profiling());
  auto after = add(small, small);  // not profiled either

  auto find = [&](const std::string& name) -> const cuda::ProfileEntry* {
    for (const auto& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  };
  std::string names;
  double total = 0;
  for (const auto& e : entries) {
    names += e.name + " (" + std::to_string(e.calls) + "); ";
    CHECK(e.ms >= 0.0);
    total += e.ms;
  }
  INFO("entries: " << names);
  const auto* add_e = find("binary_flat_kernel<Add>");
  const auto* mul_e = find("binary_flat_kernel<Mul>");
  const auto* memset_e = find("memset");
  const std::string gemm_name = "gemm fp32→fp32 " + std::to_string(n) + "×" + std::to_string(n) + "×" + std::to_string(n);
  const cuda::ProfileEntry* gemm_e = nullptr;
  for (const auto& e : entries)
    if (e.name.rfind(gemm_name, 0) == 0) gemm_e = &e;  // may carry the API it fell back to
  REQUIRE(add_e != nullptr);
  REQUIRE(mul_e != nullptr);
  REQUIRE(memset_e != nullptr);
  REQUIRE(gemm_e != nullptr);
  CHECK(add_e->calls == 1);  // the adds before and after the profile are not counted
  CHECK(mul_e->calls == 1);
  CHECK(memset_e->calls == 5001);
  CHECK(gemm_e->calls == 1);
  // The product (n³ multiply-adds) takes longer than any one fill of 16 floats.
  CHECK(gemm_e->ms > memset_e->ms / static_cast<double>(memset_e->calls));
  // The charged times tile the profiled span of the stream, which the host's span contains.
  CHECK(total <= wall_ms * 1.05 + 0.1);
  // Entries come most time first.
  for (size_t i = 1; i < entries.size(); ++i) CHECK(entries[i - 1].ms >= entries[i].ms);

  // A new profile starts empty; stopping one that is not running gives nothing.
  cuda::profile_start();
  CHECK(cuda::profile_stop().empty());
  CHECK(cuda::profile_stop().empty());
  CHECK(p.shape() == Shape{n, n});
  CHECK(before.to_vector() == after.to_vector());
}
