// Device-to-device copy bandwidth: the memory roofline the memory-bound kernels (LayerNorm, GELU)
// are judged against. cudaMemcpyAsync of 1 GiB (the asymptotic rate), and of every size whose
// traffic (bytes read plus bytes written) equals that of a LayerNorm or GELU case of
// bench_layer_norm / bench_gelu: at these sizes (copies of 2.5–116 MB) launch and ramp-up still
// show, so a kernel is compared with a copy that moves as many bytes (compare.py's "of copy"
// column). No correctness check (rel_err −1).
#include <vector>

#include "bench_common.hpp"

using namespace vts;
using namespace vts::bench;

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  require_device();
  Timer timer;
  // Copy buffers of half a forward's traffic (read x, write y) and of half a backward's (read x and
  // g, write dx), for the rows × n of bench_layer_norm (32 × 197 and 32 × 50 rows, n = 768) and
  // bench_gelu (6304 × 3072), in bf16 and fp32.
  std::vector<size_t> sizes{size_t(1) << 30};
  for (const size_t elements : {size_t(6304) * 768, size_t(1600) * 768, size_t(6304) * 3072})
    for (const size_t bytes_per : {size_t(2), size_t(4)})
      for (const size_t halves : {size_t(2), size_t(3)}) sizes.push_back(elements * bytes_per * halves / 2);
  for (size_t bytes : sizes) {
    cuda::DeviceBuffer src(bytes), dst(bytes);
    VTS_BENCH_CUDA(cudaMemsetAsync(src.data(), 1, bytes, cuda::current_stream()));
    auto copy = [&] { cuda::copy_device(Cuda{}, dst.data(), src.data(), bytes); };
    const std::string shape = std::to_string(bytes) + "B";
    if (selected(o, "d2d_copy")) emit("copy", "d2d_copy", shape, "bytes", "cudaMemcpy", timer.time(o, copy),
                                      2.0 * double(bytes), "GB/s", -1);
  }
  return 0;
}
