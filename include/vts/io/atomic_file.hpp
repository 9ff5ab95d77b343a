#pragma once
// Every file vts writes (arrays, checkpoints, codes, metrics) goes through AtomicFile: the bytes
// go to a temporary file in the destination's directory, are fsync'ed, and only then renamed over
// the destination. A crash or a full disk therefore leaves either the old file or the complete new
// one, never a truncated checkpoint that a later run would load. The temporary lives in the same
// directory because rename(2) is only atomic within one file system.
//
//   vts::io::AtomicFile out("run/weights.npz");
//   out.write(header.data(), header.size());
//   out.write(payload.data(), payload.size());
//   out.commit();  // without commit() the destructor deletes the temporary, the old file stays
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "vts/core/error.hpp"

// vts::io::detail hides vts::detail inside vts::io; bring the message builder back into view.
namespace vts::io::detail {
using ::vts::detail::concat;
}

namespace vts::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) throw IoError("AtomicFile: empty destination path");
    static std::atomic<uint64_t> counter{0};
    const uint64_t salt = static_cast<uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    for (int attempt = 0; attempt < 64; ++attempt) {
      temp_ = path_ + ".tmp-" + std::to_string(::getpid()) + "-" +
              std::to_string((salt + counter.fetch_add(1)) % 1000000007u);
      // 0666 lets the umask decide the final permissions, as for any ordinary new file.
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      if (errno != EEXIST) break;
    }
    throw IoError(detail::concat("cannot create a temporary file next to '", path_, "' (tried '",
                                 temp_, "'): ", std::strerror(errno)));
  }

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  ~AtomicFile() {
    if (committed_) return;
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temp_.c_str());
  }

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

  void write(const void* data, size_t size) {
    if (fd_ < 0) throw IoError(detail::concat("write to '", path_, "' after its handle was closed"));
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      // Linux caps one write at about 2 GiB; loop rather than assume a full write.
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw IoError(detail::concat("writing '", temp_, "' (temporary for '", path_,
                                     "') failed: ", std::strerror(errno)));
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  }

  // For libraries that write temp_path() themselves and may replace that file while doing so
  // (libzip does): give up our descriptor first; commit() reopens the file by name to sync it.
  void close_handle() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  void commit() {
    if (committed_) throw IoError(detail::concat("'", path_, "' was already committed"));
    int fd = fd_;
    fd_ = -1;
    if (fd < 0) fd = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw IoError(detail::concat("cannot reopen temporary '", temp_, "' for '", path_,
                                   "': ", std::strerror(errno)));
    if (::fsync(fd) != 0) {
      const int err = errno;
      ::close(fd);
      throw IoError(detail::concat("fsync of '", temp_, "' (temporary for '", path_,
                                   "') failed: ", std::strerror(err)));
    }
    if (::close(fd) != 0)
      throw IoError(detail::concat("closing '", temp_, "' (temporary for '", path_,
                                   "') failed: ", std::strerror(errno)));
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
      throw IoError(detail::concat("cannot rename '", temp_, "' to '", path_,
                                   "': ", std::strerror(errno)));
    committed_ = true;
    // Make the rename itself durable. Some file systems cannot fsync a directory; the data is
    // already safe then, so that failure is not an error.
    const std::string dir = parent_dir(path_);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  static std::string parent_dir(const std::string& p) {
    const auto slash = p.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
  }

  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

inline void write_file_atomic(const std::string& path, const void* data, size_t size) {
  AtomicFile f(path);
  f.write(data, size);
  f.commit();
}

// Whether two paths name the same file: through links and relative spellings for files that exist,
// by their normal absolute form otherwise. For writers of several files (and the programs) to
// refuse an output that would replace another output or an input.
inline bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec_a, ec_b;
  if (fs::exists(a, ec_a) && fs::exists(b, ec_b)) {
    const bool same = fs::equivalent(a, b, ec_a);
    return !ec_a && same;
  }
  const fs::path pa = fs::weakly_canonical(a, ec_a), pb = fs::weakly_canonical(b, ec_b);
  return !ec_a && !ec_b && pa == pb;
}

}  // namespace vts::io
