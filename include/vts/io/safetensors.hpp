#pragma once
// safetensors files (https://github.com/huggingface/safetensors, format as of 0.4):
//
//   8 bytes   N, unsigned little-endian: length of the header
//   N bytes   JSON object: "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//             per tensor, plus an optional "__metadata__": {string: string}; may end in spaces
//   rest      the data section; offsets are relative to its start
//
// Reading maps the file read-only and hands out views into the mapping, so a multi-gigabyte
// checkpoint costs no copy until a tensor is converted. The header is validated completely
// before any view is created: tensors must tile the data section exactly (sorted by offset, no
// gap, no overlap, nothing left over), and each byte range must equal dtype size x element count.
// That is what the reference implementation requires, and it means every view is in bounds.
//
// Views are not necessarily aligned for their dtype (the format only recommends an 8-byte aligned
// header); copy with memcpy or to_array() rather than casting the pointer.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/io/array.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/file.hpp"
#include "vts/io/npy.hpp"  // detail::printable

namespace vts::io {

struct SafetensorsTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte range [begin, end) within the data section
  uint64_t end = 0;
  std::span<const uint8_t> data;  // the same range, in the mapping (or the caller's buffer)
  // Keeps the mapping alive as long as any view of it, so a tensor may outlive its Safetensors.
  // Null for parse(): then the caller's buffer must outlive the view.
  std::shared_ptr<const void> owner;

  int64_t numel() const { return detail::checked_numel(shape); }
  // Elements [first, first + count) in C order, converted to T into out straight from the view:
  // what a loader uses instead of to_array() when it has somewhere to put the values.
  template <class T>
  void convert_to(T* out, int64_t first, int64_t count) const {
    detail::convert_elements(dtype, data.data() + static_cast<size_t>(first) * dtype_size(dtype), count, out, first);
  }
  // All elements converted to T, read straight from the view (to_array().as<T>() copies the bytes
  // first).
  template <class T>
  std::vector<T> as() const {
    static_assert(!std::is_same_v<T, bool>, "std::vector<bool> has no contiguous storage: use to_array().as<bool>()");
    std::vector<T> out(static_cast<size_t>(numel()));
    convert_to(out.data(), 0, numel());
    return out;
  }
  Array to_array() const {
    Array a;
    a.dtype = dtype;
    a.shape = shape;
    a.bytes.assign(data.begin(), data.end());
    return a;
  }
};

namespace detail {

inline const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i16: return "I16";
    case DType::u16: return "U16";
    case DType::i32: return "I32";
    case DType::u32: return "U32";
    case DType::i64: return "I64";
    case DType::u64: return "U64";
    case DType::b1: return "BOOL";
  }
  throw Error(concat("safetensors_dtype_name: invalid DType value ", static_cast<int>(t)));
}

inline bool safetensors_dtype_from_name(const std::string& s, DType& out) {
  static const std::map<std::string, DType> table{
      {"F16", DType::f16}, {"BF16", DType::bf16}, {"F32", DType::f32}, {"F64", DType::f64},
      {"I8", DType::i8},   {"U8", DType::u8},     {"I16", DType::i16}, {"U16", DType::u16},
      {"I32", DType::i32}, {"U32", DType::u32},   {"I64", DType::i64}, {"U64", DType::u64},
      {"BOOL", DType::b1}};
  const auto it = table.find(s);
  if (it == table.end()) return false;
  out = it->second;
  return true;
}

constexpr const char* kSafetensorsMetadataKey = "__metadata__";

}  // namespace detail

class Safetensors {
 public:
  // Maps `path` read-only and validates it.
  static Safetensors open(const std::string& path) {
    auto map = std::make_shared<const detail::MappedFile>(path);
    Safetensors st = parse(map->data(), map->size(), detail::concat("safetensors '", path, "'"));
    for (auto& [name, t] : st.tensors_) t.owner = map;
    st.map_ = std::move(map);
    return st;
  }

  // Validates an in-memory image. Non-owning: `data` must outlive the views of the result.
  // `what` names the source in error messages.
  static Safetensors parse(const void* data, size_t size, const std::string& what) {
    Safetensors st;
    st.what_ = what;
    st.parse_image(static_cast<const uint8_t*>(data), size);
    return st;
  }

  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  size_t size() const { return tensors_.size(); }
  // Offset of the data section from the start of the file (8 + header length).
  uint64_t data_offset() const { return data_offset_; }
  const std::string& source() const { return what_; }

  const SafetensorsTensor& at(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw IoError(detail::concat(what_, " has no tensor '", name, "' (it holds ", tensors_.size(), " tensors)"));
    return it->second;
  }
  Array array(const std::string& name) const { return at(name).to_array(); }

  std::map<std::string, Array> arrays() const {
    std::map<std::string, Array> out;
    for (const auto& [name, t] : tensors_) out.emplace(name, t.to_array());
    return out;
  }

 private:
  Safetensors() = default;

  [[noreturn]] void fail(const std::string& msg) const { throw IoError(detail::concat(what_, ": ", msg)); }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& msg) const {
    throw IoError(detail::concat(what_, " tensor '", detail::printable(name), "': ", msg));
  }

  void parse_image(const uint8_t* p, size_t size) {
    using json = nlohmann::json;
    if (p == nullptr && size != 0) fail("null data pointer");
    if (size < 8) fail(detail::concat("truncated: ", size, " bytes, but the file starts with an 8-byte header length"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
    if (n > size - 8)
      fail(detail::concat("header length ", n, " exceeds the ", size - 8, " bytes that follow it"));
    if (n == 0 || p[8] != '{')
      fail("header does not start with '{' (not a safetensors file, or a corrupted header length)");
    data_offset_ = 8 + n;
    const uint64_t data_size = size - data_offset_;
    const uint8_t* data = p + data_offset_;

    // Valid headers nest three levels deep ({name: {"shape": [..]}}). Refusing anything deeper
    // while parsing keeps a hostile header from building a huge tree; the callback also sees
    // top-level keys one by one, which is the only place a duplicate name is still visible.
    std::set<std::string> seen;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth > 3) fail("header JSON is nested deeper than a safetensors header can be");
      if (ev == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
        fail(detail::concat("header names '", detail::printable(parsed.get<std::string>()), "' more than once"));
      return true;
    };
    json header;
    try {
      header = json::parse(p + 8, p + 8 + n, cb);
    } catch (const json::exception& e) {
      fail(detail::concat("header is not valid JSON: ", e.what()));
    }
    if (!header.is_object()) fail("header is not a JSON object");

    struct Range {
      uint64_t begin, end;
      const std::string* name;
    };
    std::vector<Range> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == detail::kSafetensorsMetadataKey) {
        if (v.is_null()) continue;
        if (!v.is_object()) fail("__metadata__ is not a JSON object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string())
            fail(detail::concat("__metadata__ value of '", detail::printable(m.key()), "' is not a string"));
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      if (!v.is_object()) fail_tensor(name, "entry is not a JSON object");
      const auto dt = v.find("dtype");
      const auto sh = v.find("shape");
      const auto off = v.find("data_offsets");
      if (dt == v.end() || sh == v.end() || off == v.end())
        fail_tensor(name, "entry needs \"dtype\", \"shape\" and \"data_offsets\"");
      SafetensorsTensor t;
      if (!dt->is_string()) fail_tensor(name, "\"dtype\" is not a string");
      if (!detail::safetensors_dtype_from_name(dt->get<std::string>(), t.dtype))
        fail_tensor(name, detail::concat("dtype '", detail::printable(dt->get<std::string>()),
                                         "' is not supported (supported: F16 BF16 F32 F64 I8 U8 I16 U16 I32 U32 I64 U64 BOOL)"));
      if (!sh->is_array()) fail_tensor(name, "\"shape\" is not an array");
      for (const json& d : *sh) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
          fail_tensor(name, "\"shape\" holds something other than a non-negative integer");
        t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
      }
      if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
        fail_tensor(name, "\"data_offsets\" is not a pair of non-negative integers");
      t.begin = (*off)[0].get<uint64_t>();
      t.end = (*off)[1].get<uint64_t>();
      if (t.begin > t.end || t.end > data_size)
        fail_tensor(name, detail::concat("data_offsets [", t.begin, ", ", t.end, "] lie outside the data section of ",
                                         data_size, " bytes"));
      const int64_t count = detail::checked_numel(t.shape);
      uint64_t need = 0;
      if (count < 0 || __builtin_mul_overflow(static_cast<uint64_t>(count), dtype_size(t.dtype), &need))
        fail_tensor(name, detail::concat("shape ", detail::shape_str(t.shape), " is too large"));
      if (need != t.end - t.begin)
        fail_tensor(name, detail::concat(dt->get<std::string>(), " of shape ", detail::shape_str(t.shape), " needs ",
                                         need, " bytes, but data_offsets [", t.begin, ", ", t.end, "] hold ",
                                         t.end - t.begin));
      t.data = std::span<const uint8_t>(data + t.begin, static_cast<size_t>(t.end - t.begin));
      const auto [pos, inserted] = tensors_.emplace(name, std::move(t));
      ranges.push_back({pos->second.begin, pos->second.end, &pos->first});
    }

    // The tensors must tile [0, data_size): sorted by offset, each starts where the last ended.
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    uint64_t cursor = 0;
    for (const Range& r : ranges) {
      if (r.begin < cursor)
        fail_tensor(*r.name, detail::concat("data_offsets [", r.begin, ", ", r.end,
                                            "] overlap the previous tensor, which ends at ", cursor));
      if (r.begin > cursor)
        fail_tensor(*r.name, detail::concat("data_offsets [", r.begin, ", ", r.end, "] leave a gap of ",
                                            r.begin - cursor, " bytes after offset ", cursor));
      cursor = r.end;
    }
    if (cursor != data_size)
      fail(detail::concat("the tensors cover ", cursor, " bytes, but the data section holds ", data_size,
                          " (", data_size - cursor, " bytes belong to no tensor)"));
  }

  std::shared_ptr<const detail::MappedFile> map_;
  std::string what_;
  uint64_t data_offset_ = 0;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

inline Safetensors open_safetensors(const std::string& path) { return Safetensors::open(path); }

// Non-owning parse of an in-memory image (the fuzz target's entry point).
inline Safetensors parse_safetensors(const void* data, size_t size, const std::string& what) {
  return Safetensors::parse(data, size, what);
}

// Every tensor copied out of the file.
inline std::map<std::string, Array> read_safetensors(const std::string& path) { return Safetensors::open(path).arrays(); }

// A tensor for write_safetensors_streamed, whose bytes are produced while the file is written,
// not held beforehand (a checkpoint's tensors go straight from the model and the optimizer into
// the file: a B/16 training state is 2.9 GB). `write` must pass the dtype × shape bytes in C order
// to `sink`, in one or more pieces; a different total makes the writer throw and leaves the
// destination as it was.
struct SafetensorsSource {
  using Sink = std::function<void(const void* data, size_t size)>;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::function<void(const Sink& sink)> write;
};

namespace detail {

// One tensor of the file: its name, its source, and the byte count its dtype and shape make.
struct SafetensorsItem {
  const std::string* name;
  const SafetensorsSource* source;
  uint64_t bytes;
};

inline std::vector<SafetensorsItem> safetensors_items(const std::map<std::string, SafetensorsSource>& sources,
                                                      const std::string& what) {
  std::vector<SafetensorsItem> items;
  for (const auto& [name, s] : sources) {
    if (name == kSafetensorsMetadataKey)
      throw IoError(concat(what, ": '", kSafetensorsMetadataKey, "' is reserved and cannot name a tensor"));
    const int64_t n = checked_numel(s.shape);
    uint64_t bytes = 0;
    if (n < 0 || __builtin_mul_overflow(static_cast<uint64_t>(n), dtype_size(s.dtype), &bytes))
      throw IoError(concat(what, " tensor '", name, "': cannot write a tensor of invalid shape ", shape_str(s.shape)));
    if (!s.write) throw IoError(concat(what, " tensor '", name, "': no function gives its bytes"));
    items.push_back({&name, &s, bytes});
  }
  return items;
}

// The whole file — header length, header, data section — handed to `out` in order, each tensor's
// bytes as its source gives them (checked against the count its header entry announces).
// Tensors go in order of decreasing element size, then name: with the header padded to 8 bytes
// every tensor then starts aligned to its own element size, which lets readers that do cast
// the mapped pointer (and GPU uploads) use the data in place.
inline void stream_safetensors(const std::map<std::string, SafetensorsSource>& sources,
                               const std::map<std::string, std::string>& metadata, const std::string& what,
                               const SafetensorsSource::Sink& out) {
  using json = nlohmann::json;
  std::vector<SafetensorsItem> items = safetensors_items(sources, what);
  std::stable_sort(items.begin(), items.end(), [](const SafetensorsItem& x, const SafetensorsItem& y) {
    return dtype_size(x.source->dtype) > dtype_size(y.source->dtype);
  });
  json header_json = json::object();
  uint64_t offset = 0;
  for (const SafetensorsItem& item : items) {
    header_json[*item.name] = {{"dtype", safetensors_dtype_name(item.source->dtype)},
                               {"shape", item.source->shape},
                               {"data_offsets", {offset, offset + item.bytes}}};
    offset += item.bytes;
  }
  if (!metadata.empty()) header_json[kSafetensorsMetadataKey] = metadata;
  std::string header;
  try {
    header = header_json.dump();
  } catch (const json::exception& e) {
    throw IoError(concat(what, ": cannot encode the header (names and metadata must be UTF-8): ", e.what()));
  }
  header.append((8 - header.size() % 8) % 8, ' ');
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  out(length, sizeof length);
  out(header.data(), header.size());

  for (const SafetensorsItem& item : items) {
    auto shown = [&] { return concat(dtype_name(item.source->dtype), " ", shape_str(item.source->shape)); };
    uint64_t given = 0;
    item.source->write([&](const void* data, size_t size) {
      if (given + size > item.bytes)
        throw IoError(concat(what, " tensor '", *item.name, "': its source gave more than the ", item.bytes,
                             " bytes of ", shown()));
      out(data, size);
      given += size;
    });
    if (given != item.bytes)
      throw IoError(concat(what, " tensor '", *item.name, "': its source gave ", given, " of the ", item.bytes,
                           " bytes of ", shown()));
  }
}

// Arrays as sources (their bytes in one piece), each checked to hold what its dtype and shape need.
inline std::map<std::string, SafetensorsSource> array_sources(const std::map<std::string, Array>& arrays,
                                                               const std::string& what) {
  std::map<std::string, SafetensorsSource> sources;
  for (const auto& [name, a] : arrays) {
    check_array(a, concat(what, " tensor '", name, "'"));
    sources[name] = {a.dtype, a.shape,
                     [&bytes = a.bytes](const SafetensorsSource::Sink& sink) { sink(bytes.data(), bytes.size()); }};
  }
  return sources;
}

}  // namespace detail

inline std::vector<uint8_t> serialize_safetensors(const std::map<std::string, Array>& arrays,
                                                  const std::map<std::string, std::string>& metadata = {}) {
  const std::string what = "serialize_safetensors";
  std::vector<uint8_t> out;
  detail::stream_safetensors(detail::array_sources(arrays, what), metadata, what, [&](const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + size);
  });
  return out;
}

// Atomic like every vts writer. Each tensor's bytes go from its source into the file as they come,
// so nothing but the source's own pieces is held.
inline void write_safetensors_streamed(const std::string& path,
                                       const std::map<std::string, SafetensorsSource>& sources,
                                       const std::map<std::string, std::string>& metadata = {}) {
  std::optional<AtomicFile> f;  // made at the first byte: a bad name or header leaves no temporary behind
  detail::stream_safetensors(sources, metadata, detail::concat("write_safetensors '", path, "'"),
                             [&](const void* data, size_t size) {
                               if (!f) f.emplace(path);
                               f->write(data, size);
                             });
  f->commit();  // the header length is always written, so f exists
}

// Atomic like every vts writer; the arrays are written straight from their buffers.
inline void write_safetensors(const std::string& path, const std::map<std::string, Array>& arrays,
                              const std::map<std::string, std::string>& metadata = {}) {
  write_safetensors_streamed(path, detail::array_sources(arrays, detail::concat("write_safetensors '", path, "'")),
                             metadata);
}

}  // namespace vts::io
