#pragma once
// Shared by the kernel benchmarks (llm.c dev/cuda style): CUDA-event timing on the vts::cuda
// stream, an L2 flush before every timed run, median/min over repetitions, and one JSON line per
// measurement on stdout (human-readable notes go to stderr).
//
// L2 flush: before each timed repetition a buffer of twice the L2 size is written with
// cudaMemsetAsync (outside the timed interval), so every repetition starts with its inputs in
// DRAM — what a kernel sees inside a training step, where the previous layer has moved tens of
// megabytes through the cache. Without it, an input that fits in the 50 MB L2 is timed hot.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../bench_args.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::bench {

#define VTS_BENCH_CUDA(call)                                                                          \
  do {                                                                                                \
    const cudaError_t e_ = (call);                                                                    \
    if (e_ != cudaSuccess) {                                                                          \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (0)

struct Options {
  int warmup = 5;
  int reps = 50;
  bool check = true;  // CPU reference check at the benchmark shape
  std::string filter;
};

inline Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--warmup") o.warmup = vts_bench::whole_number_flag(argv[0], a, next("--warmup"));
    else if (a == "--reps") o.reps = vts_bench::whole_number_flag(argv[0], a, next("--reps"));
    else if (a == "--no-check") o.check = false;
    else if (a == "--filter") o.filter = next("--filter");
    else {
      std::fprintf(stderr, "usage: %s [--warmup N] [--reps N] [--no-check] [--filter SUBSTRING]\n", argv[0]);
      std::exit(2);
    }
  }
  if (o.reps < 1 || o.warmup < 0) {  // a median of no timed run is no figure
    std::fprintf(stderr, "%s: need --reps >= 1 and --warmup >= 0, got --reps %d --warmup %d\n", argv[0], o.reps, o.warmup);
    std::exit(2);
  }
  return o;
}

// Exits with 77 (skip) when there is no device, like the tests.
inline void require_device() {
  if (!cuda::available()) {
    std::fprintf(stderr, "SKIPPED: %s\n", cuda::unavailable_reason().c_str());
    std::exit(77);
  }
}

struct Timing {
  double median_ms = 0, min_ms = 0, mean_ms = 0;
};

class Timer {
 public:
  Timer() : flush_(2 * std::max<size_t>(cuda::device_info().l2_bytes, size_t(8) << 20)) {
    VTS_BENCH_CUDA(cudaEventCreate(&start_));
    VTS_BENCH_CUDA(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  // Median of `reps` event-timed runs of fn, each after an L2 flush; `warmup` untimed runs first.
  Timing time(const Options& o, const std::function<void()>& fn) {
    cudaStream_t s = cuda::current_stream();
    for (int i = 0; i < o.warmup; ++i) fn();
    VTS_BENCH_CUDA(cudaStreamSynchronize(s));
    std::vector<double> ms;
    for (int i = 0; i < o.reps; ++i) {
      VTS_BENCH_CUDA(cudaMemsetAsync(flush_.data(), i & 0xff, flush_.bytes(), s));
      VTS_BENCH_CUDA(cudaEventRecord(start_, s));
      fn();
      VTS_BENCH_CUDA(cudaEventRecord(stop_, s));
      VTS_BENCH_CUDA(cudaEventSynchronize(stop_));
      float t = 0;
      VTS_BENCH_CUDA(cudaEventElapsedTime(&t, start_, stop_));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    Timing r;
    r.median_ms = vts_bench::median_of_sorted(ms);
    r.min_ms = ms.front();
    double sum = 0;
    for (double v : ms) sum += v;
    r.mean_ms = sum / static_cast<double>(ms.size());
    return r;
  }

 private:
  cuda::DeviceBuffer flush_;
  cudaEvent_t start_{}, stop_{};
};

// A wrong output (NaN from a poisoned buffer) must reach the table as NaN, not break the line:
// printf's "nan" is not JSON, Python's json reads NaN and Infinity.
inline std::string json_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// One measurement as a JSON line. work: FLOPs (unit "TFLOP/s") or bytes (unit "GB/s").
inline void emit(const char* bench, const std::string& kernel, const std::string& shape, const char* dtype,
                 const char* impl, const Timing& t, double work, const char* unit, double rel_err) {
  const double rate = unit[0] == 'T' ? work / (t.median_ms * 1e-3) / 1e12 : work / (t.median_ms * 1e-3) / 1e9;
  std::printf(
      "{\"bench\": \"%s\", \"kernel\": \"%s\", \"shape\": \"%s\", \"dtype\": \"%s\", \"impl\": \"%s\", "
      "\"median_ms\": %.5f, \"min_ms\": %.5f, \"mean_ms\": %.5f, \"rate\": %.2f, \"unit\": \"%s\", "
      "\"rel_err\": %s, \"device\": \"%s\"}\n",
      bench, kernel.c_str(), shape.c_str(), dtype, impl, t.median_ms, t.min_ms, t.mean_ms, rate, unit,
      json_number(rel_err).c_str(), cuda::device_info().name.c_str());
  std::fflush(stdout);
}

inline std::vector<float> random_normal(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
inline std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16(v[i]);
  return r;
}
inline std::vector<float> to_float(const std::vector<bf16>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = static_cast<float>(v[i]);
  return r;
}

template <class T>
cuda::DeviceBuffer upload(const std::vector<T>& v) {
  cuda::DeviceBuffer b(std::max<size_t>(v.size(), 1) * sizeof(T));
  cuda::copy_from_host(cuda::Device{}, b.data(), v.data(), v.size() * sizeof(T));
  return b;
}
template <class T>
std::vector<T> download(const cuda::DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  cuda::copy_to_host(cuda::Device{}, v.data(), b.data(), n * sizeof(T));
  return v;
}

// Fills a buffer with 0xFF bytes (NaN as fp32 and as bf16) on the vts stream, so a launch that
// leaves part of its output unwritten fails the reference check instead of passing on old values.
inline void poison(cuda::DeviceBuffer& b, size_t bytes) {
  VTS_BENCH_CUDA(cudaMemsetAsync(b.data(), 0xff, bytes, cuda::current_stream()));
}

inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline bool selected(const Options& o, const std::string& name) {
  return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

}  // namespace vts::bench
