// Device-to-device copy bandwidth: the memory roofline the memory-bound kernels (LayerNorm, GELU,
// attention at ViT sizes) are judged against. cudaMemcpyAsync of 1 GiB (the asymptotic rate) and
// of 19.4 MB (the fp32 LayerNorm input at B=32: 32·197 rows × 768 × 4 B, a size where launch and
// ramp-up still show), counting bytes read plus bytes written. No correctness check (rel_err −1).
#include "bench_common.hpp"

using namespace vts;
using namespace vts::bench;

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  require_device();
  Timer timer;
  for (size_t bytes : {size_t(1) << 30, size_t(32) * 197 * 768 * 4}) {
    cuda::DeviceBuffer src(bytes), dst(bytes);
    VTS_BENCH_CUDA(cudaMemsetAsync(src.data(), 1, bytes, cuda::current_stream()));
    auto copy = [&] { cuda::copy_device(Cuda{}, dst.data(), src.data(), bytes); };
    const std::string shape = std::to_string(bytes) + "B";
    if (selected(o, "d2d_copy")) emit("copy", "d2d_copy", shape, "bytes", "cudaMemcpy", timer.time(o, copy),
                                      2.0 * double(bytes), "GB/s", -1);
  }
  return 0;
}
