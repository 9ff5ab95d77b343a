#pragma once
// Read side of the file helpers: a plain input file that knows its size (readers check every
// length field against it before allocating) and a read-only memory map (safetensors tensors are
// used in place). Writers use atomic_file.hpp.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "vts/core/error.hpp"

// vts::io::detail hides vts::detail inside vts::io; bring the message builder back into view.
namespace vts::io::detail {
using ::vts::detail::concat;
}

namespace vts::io::detail {

inline int open_regular_file(const std::string& path, uint64_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw IoError(concat("cannot open '", path, "' for reading: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw IoError(concat("cannot stat '", path, "': ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(concat("'", path, "' is not a regular file"));
  }
  size = static_cast<uint64_t>(st.st_size);
  return fd;
}

class InputFile {
 public:
  explicit InputFile(std::string path) : path_(std::move(path)) { fd_ = open_regular_file(path_, size_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

  // Reads up to n bytes; fewer only at end of file.
  size_t read(void* dst, size_t n) {
    char* p = static_cast<char*>(dst);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw IoError(concat("reading '", path_, "' failed: ", std::strerror(errno)));
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Read-only, private mapping of a whole file. Note: if another process truncates the file while
// it is mapped, touching the lost pages raises SIGBUS; weights files are not edited in place.
class MappedFile {
 public:
  explicit MappedFile(std::string path) : path_(std::move(path)) {
    const int fd = open_regular_file(path_, size_);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      const int err = errno;
      ::close(fd);
      if (p == MAP_FAILED) throw IoError(concat("cannot mmap '", path_, "': ", std::strerror(err)));
      data_ = static_cast<const uint8_t*>(p);
    } else {
      ::close(fd);  // mmap of length 0 is an error; an empty file maps to nothing
    }
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace vts::io::detail
