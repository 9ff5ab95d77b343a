// Device discovery: the one CUDA entry point every program and test calls first, so that a
// machine without a GPU is detected and reported instead of failing inside a kernel launch.
#include <cuda_runtime.h>

#include "vts_cuda_api.hpp"

namespace vts::cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

bool available() noexcept { return device_count() > 0; }

}  // namespace vts::cuda
