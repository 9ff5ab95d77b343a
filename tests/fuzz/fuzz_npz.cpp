// libFuzzer target for the npz reader (libzip + the npy parser). The input is written to a
// temporary file because the reader's interface is a path, as it is for every user.
//
// Oracle: list_npz / read_npz / read_npz_member either throw vts::IoError or agree with each
// other; anything else (other exceptions, sanitizer reports) is a crash.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "vts/io/npz.hpp"

namespace {
const std::string& temp_path() {
  // Deliberately leaked: the atexit handler below runs after static destructors would have.
  static const std::string* path = new std::string([] {
    // /dev/shm keeps the per-input write off the disk where it exists.
    std::string tmpl = access("/dev/shm", W_OK) == 0 ? "/dev/shm/vts_fuzz_npz_XXXXXX" : "/tmp/vts_fuzz_npz_XXXXXX";
    const int fd = mkstemp(tmpl.data());
    if (fd < 0) std::abort();
    close(fd);
    std::atexit([] { std::remove(temp_path().c_str()); });
    return tmpl;
  }());
  return *path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = temp_path();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  std::vector<std::string> keys;
  try {
    keys = vts::io::list_npz(path);
  } catch (const vts::IoError&) {
    return 0;
  }
  std::map<std::string, vts::io::Array> all;
  try {
    all = vts::io::read_npz(path);
  } catch (const vts::IoError&) {
    all.clear();
  }
  for (const auto& [key, a] : all)
    if (a.bytes.size() != static_cast<size_t>(a.numel()) * vts::io::dtype_size(a.dtype)) std::abort();
  for (const std::string& key : keys) {
    try {
      const vts::io::Array a = vts::io::read_npz_member(path, key);
      const auto it = all.find(key);
      // Whatever read_npz returned must be what the member reader returns.
      if (it != all.end() && (it->second.bytes != a.bytes || it->second.shape != a.shape)) std::abort();
    } catch (const vts::IoError&) {
    }
  }
  return 0;
}
