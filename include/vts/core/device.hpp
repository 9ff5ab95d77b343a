#pragma once
// Device tags. Each tag lives in the namespace of its backend so that a kernel call written as
// `fill(Device{}, ...)` finds `vts::cpu::fill` or `vts::cuda::fill` by argument-dependent lookup:
// dispatch is decided at compile time by the tensor's type, with no run-time branch.
#include <cstddef>

namespace vts {
namespace cpu {
struct Device {
  static constexpr const char* name = "cpu";
};
}  // namespace cpu
namespace cuda {
struct Device {
  static constexpr const char* name = "cuda";
};
}  // namespace cuda

using Cpu = cpu::Device;
using Cuda = cuda::Device;

template <class D>
inline constexpr bool is_cpu_v = false;
template <>
inline constexpr bool is_cpu_v<Cpu> = true;

}  // namespace vts
