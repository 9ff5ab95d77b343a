#pragma once
// NumPy .npz archives: a zip file whose members are .npy images named "<key>.npy". numpy writes
// members stored (np.savez) or deflated (np.savez_compressed), always with zip64 extra fields;
// libzip reads both and writes zip64 when a member needs it. Keys drop the ".npy" suffix as
// numpy's NpzFile does ("Transformer/encoderblock_0/LayerNorm_0/scale" for the ViT checkpoints).
//
// Every member read is checked against its CRC-32; a mismatch is an IoError naming the archive
// and the member. Members must be stored or deflated (the only methods numpy writes); that also
// lets the reader bound the size a member can claim before it allocates for it.
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/io/array.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/file.hpp"
#include "vts/io/npy.hpp"

namespace vts::io {

namespace detail {

inline std::string zip_error_text(int code) {
  zip_error_t err;
  zip_error_init_with_code(&err, code);
  std::string s = zip_error_strerror(&err);
  zip_error_fini(&err);
  return s;
}

class ZipReader {
 public:
  explicit ZipReader(const std::string& path) : path_(path) {
    {
      InputFile probe(path);  // uniform "cannot open"/"not a regular file" errors, and the size
      file_size_ = probe.size();
    }
    int code = 0;
    // ZIP_CHECKCONS: compare local and central headers, so a member whose two copies disagree is
    // refused at open instead of read half-way.
    zip_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!zip_)
      throw IoError(concat("npz '", path, "': cannot open as a zip archive: ", zip_error_text(code)));
  }
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;
  ~ZipReader() {
    if (zip_) zip_discard(zip_);
  }

  zip_uint64_t count() const {
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    return n < 0 ? 0 : static_cast<zip_uint64_t>(n);
  }

  zip_stat_t stat(zip_uint64_t index) const {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip_, index, 0, &st) != 0)
      throw IoError(concat("npz '", path_, "': cannot read directory entry ", index, ": ", zip_strerror(zip_)));
    if (!(st.valid & ZIP_STAT_NAME) || st.name == nullptr)
      throw IoError(concat("npz '", path_, "': directory entry ", index, " has no name"));
    return st;
  }

  static bool is_directory(const zip_stat_t& st) {
    const size_t n = std::strlen(st.name);
    return n > 0 && st.name[n - 1] == '/';
  }

  static std::string key_of(const std::string& member) {
    if (member.size() >= 4 && member.compare(member.size() - 4, 4, ".npy") == 0)
      return member.substr(0, member.size() - 4);
    return member;
  }

  Array read(zip_uint64_t index) const {
    const zip_stat_t st = stat(index);
    const std::string what = concat("npz '", path_, "' member '", printable(key_of(st.name)), "'");
    const zip_uint64_t need_flags = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need_flags) != need_flags)
      throw IoError(concat(what, ": directory entry lacks sizes or compression method"));
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
      throw IoError(concat(what, ": member is encrypted"));
    if (st.comp_size > file_size_)
      throw IoError(concat(what, ": compressed size ", st.comp_size, " exceeds the archive's ",
                           file_size_, " bytes"));
    if (st.comp_method == ZIP_CM_STORE) {
      if (st.size != st.comp_size)
        throw IoError(concat(what, ": stored member has size ", st.size, " but compressed size ",
                             st.comp_size));
    } else if (st.comp_method == ZIP_CM_DEFLATE) {
      // Deflate cannot expand data by more than about 1032:1; a larger claim is a corrupt or
      // hostile directory entry and must not size an allocation.
      if (st.size / 1032 > st.comp_size + 1)
        throw IoError(concat(what, ": claims ", st.size, " bytes from ", st.comp_size,
                             " deflated bytes, more than deflate can produce"));
    } else {
      throw IoError(concat(what, ": compression method ", st.comp_method,
                           " is not supported (numpy writes stored or deflated members)"));
    }

    zip_file_t* f = zip_fopen_index(zip_, index, 0);
    if (!f) throw IoError(concat(what, ": cannot open member: ", zip_strerror(zip_)));
    struct Closer {
      zip_file_t* f;
      ~Closer() { zip_fclose(f); }
    } closer{f};
    struct Source {
      zip_file_t* f;
      const std::string& what;
      size_t read(void* dst, size_t n) {
        size_t got = 0;
        while (got < n) {
          const size_t chunk = std::min<size_t>(n - got, size_t(1) << 26);
          const zip_int64_t r = zip_fread(f, static_cast<char*>(dst) + got, chunk);
          if (r < 0) throw IoError(concat(what, ": ", zip_file_strerror(f)));
          if (r == 0) break;
          got += static_cast<size_t>(r);
        }
        return got;
      }
    } src{f, what};
    Array a = read_npy_stream(src, st.size, what);
    // libzip compares the CRC when the member is read to its end, which the reader detects by
    // asking for more: this is where a corrupted member surfaces.
    uint8_t extra = 0;
    if (src.read(&extra, 1) != 0)
      throw IoError(concat(what, ": member holds more than the ", st.size, " bytes its directory entry says"));
    return a;
  }

  zip_int64_t locate(const std::string& name) const { return zip_name_locate(zip_, name.c_str(), 0); }

 private:
  std::string path_;
  zip_t* zip_ = nullptr;
  uint64_t file_size_ = 0;
};

}  // namespace detail

// Keys of the archive's members in archive order ("w.npy" is listed as "w").
inline std::vector<std::string> list_npz(const std::string& path) {
  detail::ZipReader z(path);
  std::vector<std::string> keys;
  for (zip_uint64_t i = 0; i < z.count(); ++i) {
    const zip_stat_t st = z.stat(i);
    if (!detail::ZipReader::is_directory(st)) keys.push_back(detail::ZipReader::key_of(st.name));
  }
  return keys;
}

inline std::map<std::string, Array> read_npz(const std::string& path) {
  detail::ZipReader z(path);
  std::map<std::string, Array> out;
  for (zip_uint64_t i = 0; i < z.count(); ++i) {
    const zip_stat_t st = z.stat(i);
    if (detail::ZipReader::is_directory(st)) continue;
    const std::string key = detail::ZipReader::key_of(st.name);
    if (out.count(key))
      throw IoError(detail::concat("npz '", path, "': key '", detail::printable(key), "' occurs more than once"));
    out.emplace(key, z.read(i));
  }
  return out;
}

// One member, without reading the others (a checkpoint loader can pick what it needs).
inline Array read_npz_member(const std::string& path, const std::string& key) {
  detail::ZipReader z(path);
  zip_int64_t idx = z.locate(key + ".npy");
  if (idx < 0) idx = z.locate(key);
  if (idx < 0) {
    std::string known;
    size_t shown = 0;
    for (zip_uint64_t i = 0; i < z.count() && shown < 20; ++i, ++shown)
      known += (shown ? ", " : "") + detail::ZipReader::key_of(z.stat(i).name);
    if (z.count() > 20) known += ", ...";
    throw IoError(detail::concat("npz '", path, "' has no member '", key, "' (it holds ", z.count(),
                                 " members: ", known.empty() ? "none" : known, ")"));
  }
  return z.read(static_cast<zip_uint64_t>(idx));
}

// Atomic like every vts writer. `compress` picks deflate (np.savez_compressed) over stored
// (np.savez). The arrays are handed to libzip in place, not copied.
inline void write_npz(const std::string& path, const std::map<std::string, Array>& arrays, bool compress) {
  for (const auto& [key, a] : arrays) detail::check_array(a, detail::concat("write_npz '", path, "' key '", key, "'"));
  AtomicFile out(path);
  if (arrays.empty()) {
    // libzip deletes an archive left with no members; numpy writes the bare end record instead.
    const uint8_t eocd[22] = {'P', 'K', 5, 6};
    out.write(eocd, sizeof eocd);
    out.commit();
    return;
  }
  out.close_handle();  // libzip writes its own temporary and renames it onto out.temp_path()
  int code = 0;
  zip_t* z = zip_open(out.temp_path().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (!z)
    throw IoError(detail::concat("npz '", path, "': cannot create zip archive: ", detail::zip_error_text(code)));
  auto fail = [&](const std::string& key, const std::string& msg) {
    const std::string full = detail::concat("npz '", path, "' member '", key, "': ", msg);
    zip_discard(z);
    throw IoError(full);
  };
  // Headers and fragment lists must outlive zip_close, which is when libzip reads the sources.
  std::vector<std::vector<uint8_t>> headers;
  std::vector<std::vector<zip_buffer_fragment_t>> fragments;
  headers.reserve(arrays.size());
  fragments.reserve(arrays.size());
  for (const auto& [key, a] : arrays) {
    headers.push_back(detail::npy_header(a));
    auto& frags = fragments.emplace_back();
    frags.push_back({headers.back().data(), headers.back().size()});
    if (!a.bytes.empty()) frags.push_back({const_cast<uint8_t*>(a.bytes.data()), a.bytes.size()});
    zip_source_t* src = zip_source_buffer_fragment(z, frags.data(), frags.size(), 0);
    if (!src) fail(key, detail::concat("cannot create a zip source: ", zip_strerror(z)));
    const zip_int64_t idx = zip_file_add(z, (key + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
      zip_source_free(src);
      fail(key, detail::concat("cannot add to the archive: ", zip_strerror(z)));
    }
    if (zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0)
      fail(key, detail::concat("cannot set compression: ", zip_strerror(z)));
  }
  if (zip_close(z) != 0) {
    const std::string msg = zip_strerror(z);
    zip_discard(z);
    throw IoError(detail::concat("npz '", path, "': writing the archive failed: ", msg));
  }
  out.commit();
}

}  // namespace vts::io
