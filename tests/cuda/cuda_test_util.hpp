#pragma once
// Helpers shared by the CUDA parity tests: device buffers filled from host vectors, NaN poisoning,
// fresh random inputs, bf16 rounding, and the relative error ‖out − ref‖ / ‖ref‖.
//
// Every test draws new inputs on every run (seed from std::random_device, printed on failure so a
// failing case can be replayed with VTS_TEST_SEED=<seed>), poisons outputs with NaN before the
// kernel runs (an element the kernel forgot to write stays NaN and fails the check), and compares
// against the vts::cpu kernel on the same inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "vts/backend/cuda/gemm.hpp"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/dtype.hpp"

namespace vts::cuda::test {

inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("VTS_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

struct Rng {
  explicit Rng(uint64_t seed) : gen(seed) {}
  std::mt19937_64 gen;
  std::vector<float> normal(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(gen);
    return v;
  }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(gen);
    return v;
  }
};

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
// The value a float takes after a round trip through bf16 (what a bf16 kernel actually sees).
inline std::vector<float> round_bf16(const std::vector<float>& v) { return to_float(to_bf16(v)); }

template <class T>
T quiet_nan() {
  if constexpr (std::is_same_v<T, bf16>) {
    bf16 b;
    b.bits = 0x7fc0;
    return b;
  } else {
    return std::numeric_limits<T>::quiet_NaN();
  }
}

// A device buffer of n elements of T.
template <class T>
class Buf {
 public:
  explicit Buf(size_t n) : n_(n), mem_(std::max<size_t>(n, 1) * sizeof(T)) {}
  explicit Buf(const std::vector<T>& host) : Buf(host.size()) { upload(host); }
  T* data() const { return mem_.as<T>(); }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    copy_from_host(Device{}, data(), host.data(), n_ * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    copy_to_host(Device{}, host.data(), data(), n_ * sizeof(T));
    return host;
  }
  void poison() { fill(Device{}, data(), static_cast<int64_t>(n_), quiet_nan<T>()); }

 private:
  size_t n_;
  DeviceBuffer mem_;
};

inline Buf<bf16> bf16_buf(const std::vector<float>& v) { return Buf<bf16>(to_bf16(v)); }

// ‖out − ref‖₂ / max(‖ref‖₂, min_norm) in double; +inf if any element of out is not finite while
// ref's is, or the sizes differ. A zero reference compares ‖out‖₂ against 1 instead. min_norm turns
// the measure absolute for references near zero, where a few-element case would otherwise measure
// the conditioning of the formula rather than the kernel.
inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref, double min_norm = 0) {
  if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]) && std::isfinite(ref[i])) return std::numeric_limits<double>::infinity();
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  den = std::max(den, min_norm * min_norm);
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}
inline double rel_err(const std::vector<bf16>& out, const std::vector<float>& ref, double min_norm = 0) {
  return rel_err(to_float(out), ref, min_norm);
}

// "" when got and want hold the same bits; else how many elements differ and the first of them —
// what CHECK(bit_differences(a, b) == "") prints on a failure, where comparing the vectors
// themselves printed every element (600,000 of them once, which outlasted the test's timeout).
template <class T>
std::string bit_differences(const std::vector<T>& got, const std::vector<T>& want) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "float or bf16");
  auto bits = [](const T& v) {
    uint32_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
  };
  if (got.size() != want.size()) return "sizes " + std::to_string(got.size()) + " and " + std::to_string(want.size());
  size_t count = 0, first = 0;
  for (size_t i = got.size(); i-- > 0;) {
    if (bits(got[i]) != bits(want[i])) {
      ++count;
      first = i;
    }
  }
  if (count == 0) return "";
  std::ostringstream m;
  m << count << " of " << got.size() << " differ; first at " << first << ": " << static_cast<float>(got[first])
    << " against " << static_cast<float>(want[first]);
  return m.str();
}

// Sets one of vts::cuda's process-wide settings (a getter and setter pair such as tf32 / set_tf32)
// for a scope, and restores what it was, also when a check throws.
template <class V>
class ScopedSetting {
 public:
  ScopedSetting(V (*get)(), void (*set)(V), V value) : set_(set), was_(get()) { set_(value); }
  ~ScopedSetting() { set_(was_); }
  ScopedSetting(const ScopedSetting&) = delete;
  ScopedSetting& operator=(const ScopedSetting&) = delete;

 private:
  void (*set_)(V);
  V was_;
};

// An environment variable set for a scope and removed after it (vts-emu reads its device's
// description, memory limit included, from some at every call).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { ::setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// Whether the device is vts-emu (the kernels on the CPU), whose environment variables can make it
// pretend other devices.
inline bool emulated() { return device_info().name.find("vts-emu") != std::string::npos; }

// Turns TF32 off for a test's GEMMs (its ≈ 1e-3 would hide every other error).
struct Tf32Off : ScopedSetting<bool> {
  Tf32Off() : ScopedSetting<bool>(tf32, set_tf32, false) {}
};

inline constexpr double kTolF32 = 1e-5;
inline constexpr double kTolBf16 = 1e-2;

}  // namespace vts::cuda::test
