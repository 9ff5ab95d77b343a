#pragma once
// IDX files (the MNIST / Fashion-MNIST container): a 4-byte magic 0x00 0x00 <type> <rank>, then
// <rank> big-endian uint32 sizes, then the payload in row-major order. Only the unsigned-byte type
// (0x08) is read: it is the only one the image datasets use. The file may be gzip-compressed or
// plain; zlib's gzread passes plain files through unchanged, so one code path reads both.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "vts/core/error.hpp"

namespace vts::data {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
};

namespace detail {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to n bytes; returns how many arrived. A zlib error (corrupt stream) throws, while a
// short read is reported through the count so the caller can say what it expected.
inline int64_t gz_read_some(gzFile f, uint8_t* dst, int64_t n, const std::string& path) {
  int64_t done = 0;
  while (done < n) {
    // gzread takes an unsigned int; chunk so multi-GiB payloads cannot overflow it.
    const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, int64_t(1) << 30));
    const int got = gzread(f, dst + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw IoError(vts::detail::concat("read_idx: ", path, ": cannot decompress (zlib: ",
                                        msg ? msg : "unknown error", ") after ", done,
                                        " bytes of a ", n, "-byte block"));
    }
    if (got == 0) break;
    done += got;
  }
  return done;
}

}  // namespace detail

// Reads a whole unsigned-byte IDX file. Throws vts::IoError naming the file when it cannot be
// opened, when the magic or element type is wrong, and when it holds fewer (or more) bytes than
// its header promises.
inline IdxArray read_idx(const std::string& path) {
  detail::GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) throw IoError(vts::detail::concat("read_idx: cannot open '", path, "' for reading"));
  uint8_t magic[4];
  const int64_t got_magic = detail::gz_read_some(f.get(), magic, 4, path);
  if (got_magic != 4)
    throw IoError(vts::detail::concat("read_idx: ", path, ": expected a 4-byte IDX magic, found a ",
                                      got_magic, "-byte file"));
  if (magic[0] != 0 || magic[1] != 0)
    throw IoError(vts::detail::concat("read_idx: ", path,
                                      ": expected IDX magic starting with bytes 0x00 0x00, found ",
                                      int(magic[0]), " ", int(magic[1]), " (not an IDX file)"));
  if (magic[2] != 0x08)
    throw IoError(vts::detail::concat("read_idx: ", path,
                                      ": expected element type 0x08 (unsigned byte), found 0x",
                                      std::hex, int(magic[2])));
  const int rank = magic[3];
  if (rank < 1)
    throw IoError(vts::detail::concat("read_idx: ", path, ": expected at least 1 dimension, found 0"));

  std::vector<uint8_t> header(static_cast<size_t>(rank) * 4);
  const int64_t got_header = detail::gz_read_some(f.get(), header.data(), rank * 4, path);
  if (got_header != rank * 4)
    throw IoError(vts::detail::concat("read_idx: ", path, ": truncated header: expected ", rank,
                                      " dimension sizes (", rank * 4, " bytes), found ", got_header,
                                      " bytes"));
  IdxArray out;
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const uint8_t* b = header.data() + 4 * d;
    const int64_t size = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | b[3];
    out.dims.push_back(size);
    // Guard the product against a corrupt header claiming an absurd size.
    if (size != 0 && total > (int64_t(1) << 40) / size)
      throw IoError(vts::detail::concat("read_idx: ", path, ": header claims more than 2^40 elements"));
    total *= size;
  }
  // The header is not trusted with the allocation (a few bytes can claim 2^40 elements, and a
  // gzip file's payload size is not known before it is decompressed): the buffer grows with the
  // bytes that actually arrive, from 1 MiB, at most doubling, so it never exceeds twice the data.
  int64_t got = 0;
  while (got < total) {
    const int64_t want = std::min(total - got, std::max<int64_t>(got, int64_t(1) << 20));
    out.data.resize(static_cast<size_t>(got + want));
    const int64_t n = detail::gz_read_some(f.get(), out.data.data() + got, want, path);
    got += n;
    if (n < want) break;
  }
  if (got != total) {
    std::ostringstream dims;
    for (int d = 0; d < rank; ++d) dims << (d ? "x" : "") << out.dims[static_cast<size_t>(d)];
    const int64_t per_item = out.dims[0] ? total / out.dims[0] : 0;
    throw IoError(vts::detail::concat(
        "read_idx: ", path, ": truncated: header promises ", dims.str(), " = ", total,
        " bytes of data, found ", got, " (", per_item ? got / per_item : 0, " of ", out.dims[0],
        " items complete)"));
  }
  // Trailing bytes mean the header and payload disagree: refuse rather than guess which is right.
  std::vector<uint8_t> rest(64 * 1024);
  int64_t extra = 0;
  for (int64_t got_rest; (got_rest = detail::gz_read_some(f.get(), rest.data(), int64_t(rest.size()), path)) > 0;)
    extra += got_rest;
  if (extra != 0)
    throw IoError(vts::detail::concat("read_idx: ", path, ": expected exactly ", total,
                                      " bytes of data after the header, found ", total + extra, " (", extra,
                                      " trailing)"));
  return out;
}

}  // namespace vts::data
