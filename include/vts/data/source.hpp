#pragma once
// Reading one image back from where a dataset says it came from (Dataset::source): an image file,
// or "container#record" for the formats that pack many images in one file — an IDX image file
// (Fashion-MNIST, gzip or not) or a CIFAR-10 binary batch. `vts search` uses this to show the
// neighbours it found, and to take its query from either kind of source.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "vts/data/cifar10.hpp"
#include "vts/data/idx.hpp"
#include "vts/data/image.hpp"

namespace vts::data {

// A source split into its file and record; record is -1 for a plain image file. "a#b.png" stays
// one file name when "a#b.png" exists or the part after '#' is not a number.
struct SourceRef {
  std::string file;
  int64_t record = -1;
};

inline SourceRef parse_source(const std::string& source) {
  const size_t hash = source.rfind('#');
  if (hash == std::string::npos || hash + 1 == source.size()) return {source, -1};
  std::error_code ec;
  if (std::filesystem::exists(source, ec)) return {source, -1};
  const std::string_view digits(source.data() + hash + 1, source.size() - hash - 1);
  int64_t record = -1;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), record);
  if (err != std::errc() || end != digits.data() + digits.size() || record < 0) return {source, -1};
  return {source.substr(0, hash), record};
}

// Reads images by source, keeping each container it opened (an IDX file is read once however
// many of its records are asked for). Not thread-safe.
class SourceImageReader {
 public:
  // Image `source` as 8-bit HWC with `channels` channels (grey is replicated to RGB; RGB becomes
  // grey by ITU-R 601 luma, as PIL's convert("L")). Throws vts::IoError naming the source.
  ImageU8 read(const std::string& source, int channels) {
    VTS_CHECK(channels >= 1 && channels <= 4, "SourceImageReader: expected 1..4 channels, found ", channels);
    const SourceRef ref = parse_source(source);
    if (ref.record < 0) return decode_image(ref.file, channels);
    const bool cifar = std::filesystem::path(ref.file).extension() == ".bin";
    ImageU8 img = cifar ? cifar_record(ref) : idx_record(ref);
    return convert_channels(img, channels);
  }

 private:
  ImageU8 idx_record(const SourceRef& ref) {
    auto it = idx_files_.find(ref.file);
    if (it == idx_files_.end()) it = idx_files_.emplace(ref.file, std::make_shared<IdxArray>(read_idx(ref.file))).first;
    const IdxArray& a = *it->second;
    if (a.dims.size() != 3)
      throw IoError(vts::detail::concat("image source '", ref.file, "#", ref.record, "': expected an IDX file of "
                                        "images (3 dimensions), found ", a.dims.size(), " dimensions"));
    if (ref.record >= a.dims[0])
      throw IoError(vts::detail::concat("image source '", ref.file, "#", ref.record, "': the file holds ", a.dims[0],
                                        " images (records 0..", a.dims[0] - 1, ")"));
    ImageU8 img;
    img.height = static_cast<int>(a.dims[1]);
    img.width = static_cast<int>(a.dims[2]);
    img.channels = 1;
    const size_t bytes = static_cast<size_t>(img.height) * static_cast<size_t>(img.width);
    const uint8_t* p = a.data.data() + static_cast<size_t>(ref.record) * bytes;
    img.pixels.assign(p, p + bytes);
    return img;
  }

  static ImageU8 cifar_record(const SourceRef& ref) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(ref.file.c_str(), "rb"), &std::fclose);
    if (!f) throw IoError(vts::detail::concat("cannot open image source '", ref.file, "': ", std::strerror(errno)));
    uint8_t record[kCifarRecordBytes];
    const long offset = static_cast<long>(ref.record) * kCifarRecordBytes;
    if (std::fseek(f.get(), offset, SEEK_SET) != 0 || std::fread(record, 1, sizeof record, f.get()) != sizeof record)
      throw IoError(vts::detail::concat("image source '", ref.file, "#", ref.record, "': expected a ",
                                        kCifarRecordBytes, "-byte CIFAR-10 record at byte ", offset,
                                        ", found the file too short"));
    ImageU8 img;  // the record is label then planar R, G, B
    img.height = img.width = 32;
    img.channels = 3;
    img.pixels.resize(32 * 32 * 3);
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 32 * 32; ++k) img.pixels[static_cast<size_t>(k * 3 + c)] = record[1 + c * 1024 + k];
    return img;
  }

  static ImageU8 convert_channels(const ImageU8& in, int channels) {
    if (in.channels == channels) return in;
    ImageU8 out;
    out.height = in.height;
    out.width = in.width;
    out.channels = channels;
    const size_t n = static_cast<size_t>(in.height) * static_cast<size_t>(in.width);
    out.pixels.resize(n * static_cast<size_t>(channels));
    for (size_t k = 0; k < n; ++k) {
      const uint8_t* p = in.pixels.data() + k * static_cast<size_t>(in.channels);
      const uint8_t grey = in.channels >= 3 ? pil_luma(p) : p[0];
      for (int c = 0; c < channels; ++c) {
        uint8_t v = grey;
        if (c < 3 && in.channels >= 3 && channels >= 3) v = p[c];
        if (c == 3) v = 255;  // opaque alpha
        out.pixels[k * static_cast<size_t>(channels) + static_cast<size_t>(c)] = v;
      }
    }
    return out;
  }

  std::map<std::string, std::shared_ptr<const IdxArray>> idx_files_;
};

}  // namespace vts::data
