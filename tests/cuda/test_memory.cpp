// Device memory: Tensor<T, vts::Cuda> creation, fill, host copies, strided copies through views,
// the caching allocator (no cudaMalloc per op once warm) and pinned buffers.
#include "cuda_test_util.hpp"
#include "vts/backend/cpu/strided.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/upload.hpp"
#include "vts/core/tensor.hpp"

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
  CHECK(dev.download() == v);
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
