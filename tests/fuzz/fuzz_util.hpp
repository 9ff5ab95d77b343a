#pragma once
// Shared by the fuzz targets whose reader takes a path: the input is written to one temporary file
// per process (in /dev/shm where it exists, so the per-input write stays off the disk), and a
// target that generates its own seeds writes them when VTS_FUZZ_WRITE_SEEDS names a folder
// (scripts/fuzz does that once before the first run).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace vts_fuzz {

// A temporary file named after `tag`, removed at exit. Deliberately leaked: the atexit handler runs
// after static destructors would have destroyed the name.
inline const std::string& temp_path(const char* tag) {
  static const std::string* path = new std::string([tag] {
    std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string tmpl = dir + "/vts_fuzz_" + tag + "_XXXXXX";
    const int fd = mkstemp(tmpl.data());
    if (fd < 0) std::abort();
    close(fd);
    std::atexit([] { std::remove(path->c_str()); });
    return tmpl;
  }());
  return *path;
}

inline void write_file(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  if (std::fclose(f) != 0) std::abort();
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file(path, bytes.data(), bytes.size());
}

inline void write_file(const std::string& path, const std::string& text) { write_file(path, text.data(), text.size()); }

// The input, written to the target's temporary file; returns its path.
inline const std::string& input_file(const char* tag, const uint8_t* data, size_t size) {
  const std::string& path = temp_path(tag);
  write_file(path, data, size);
  return path;
}

// The folder to write seeds into (VTS_FUZZ_WRITE_SEEDS), or null for an ordinary run.
inline const char* seed_dir() {
  const char* d = std::getenv("VTS_FUZZ_WRITE_SEEDS");
  return d && *d ? d : nullptr;
}

// What each target's LLVMFuzzerInitialize returns: when scripts/fuzz asks for seeds, they are
// written with `write` and the process exits before any input runs.
inline int write_seeds_if_asked(void (*write)(const std::string&)) {
  if (const char* dir = seed_dir()) {
    write(dir);
    std::exit(0);
  }
  return 0;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) std::abort();
  uint8_t buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

// For the oracles: stops the run (libFuzzer reports a deadly signal with the input) with a line
// saying which check failed.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz oracle: %s\n", what);
  std::abort();
}

}  // namespace vts_fuzz
