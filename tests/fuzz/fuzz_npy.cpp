// libFuzzer target for vts::io::parse_npy. Build and run with scripts/fuzz.
//
// Oracle: parsing either throws vts::IoError or returns an array that is internally consistent,
// converts to double, and survives serialize -> parse unchanged. Any other exception, a sanitizer
// report or a mismatch is a crash.
#include <cstdint>
#include <cstdlib>

#include "vts/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vts::io::Array a;
  try {
    a = vts::io::parse_npy(data, size, "fuzz input");
  } catch (const vts::IoError&) {
    return 0;
  }
  if (a.bytes.size() != static_cast<size_t>(a.numel()) * vts::io::dtype_size(a.dtype)) std::abort();
  (void)a.as<double>();
  const std::vector<uint8_t> img = vts::io::serialize_npy(a);
  const vts::io::Array b = vts::io::parse_npy(img.data(), img.size(), "re-serialized");
  if (b.dtype != a.dtype || b.shape != a.shape || b.bytes != a.bytes) std::abort();
  return 0;
}
