// libFuzzer target for the safetensors header parser (vts::io::parse_safetensors, the in-memory
// entry point behind Safetensors::open).
//
// Oracle: parsing either throws vts::IoError or yields tensors whose views lie inside the input
// and whose sizes match their shapes; re-serializing and parsing again reproduces them exactly.
#include <cstdint>
#include <cstdlib>

#include "vts/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, vts::io::Array> arrays;
  std::map<std::string, std::string> metadata;
  try {
    const vts::io::Safetensors st = vts::io::parse_safetensors(data, size, "fuzz input");
    for (const auto& [name, t] : st.tensors()) {
      if (t.data.size() && (t.data.data() < data || t.data.data() + t.data.size() > data + size)) std::abort();
      if (t.data.size() != static_cast<size_t>(t.numel()) * vts::io::dtype_size(t.dtype)) std::abort();
    }
    arrays = st.arrays();
    metadata = st.metadata();
  } catch (const vts::IoError&) {
    return 0;
  }
  const std::vector<uint8_t> img = vts::io::serialize_safetensors(arrays, metadata);
  const vts::io::Safetensors again = vts::io::parse_safetensors(img.data(), img.size(), "re-serialized");
  if (again.metadata() != metadata || again.size() != arrays.size()) std::abort();
  for (const auto& [name, a] : arrays) {
    const vts::io::Array b = again.array(name);
    if (b.dtype != a.dtype || b.shape != a.shape || b.bytes != a.bytes) std::abort();
  }
  return 0;
}
