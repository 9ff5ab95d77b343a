#pragma once
// Export packed codes to the engines people serve binary codes with.
//
// FAISS: the file `faiss.read_index_binary` (and faiss::read_index_binary in C++) loads.
//   IndexBinaryFlat ("IBxF"): fourcc, then the IndexBinary header — i32 d (= K), i32 code_size
//   (= K/8), i64 ntotal, u8 is_trained (1), i32 metric_type (1, METRIC_L2, FAISS's value for
//   binary indexes) — then the codes as a vector: u64 byte count and the bytes. FAISS keeps our bit
//   order (bit j = bit j%8 of byte j/8), so codes are written unchanged and FAISS computes the
//   same distances. Result ids are the row numbers 0..n-1.
//   IndexBinaryIDMap ("IBMp") around it maps rows to caller ids: header (FAISS 1.7.3 writes
//   code_size 0 for the wrapper; readers ignore it), the IBxF index, then u64 count and i64 ids.
//   Both layouts were checked byte for byte against files written by FAISS 1.7.3.
// Milvus: a BINARY_VECTOR field of dim K takes K/8 bytes per row. export_milvus writes what the
//   numpy bulk-insert path reads: `<vectors>.npy` (uint8, n × K/8) and `<ids>.npy` (int64, n).
//   Milvus's examples pack with numpy.packbits' default most-significant-bit-first order; ours is
//   least-significant first. Hamming and Jaccard distances do not depend on the bit order as long
//   as queries are packed the same way, so pack queries with vts::index::pack_codes too.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "vts/core/error.hpp"
#include "vts/index/codes.hpp"
#include "vts/io/array.hpp"
#include "vts/io/atomic_file.hpp"
#include "vts/io/npy.hpp"

namespace vts::index {

namespace detail {

inline void check_faiss_codes(CodesView codes, const char* where) {
  check_code_bits(codes.bits, where);
  VTS_CHECK(codes.count >= 0 && (codes.count == 0 || codes.data), where, ": codes without data");
  // FAISS stores d and code_size as 32-bit ints.
  VTS_CHECK(codes.bits < (int64_t(1) << 31), where, ": K = ", codes.bits, " does not fit FAISS's int d");
}

// Grows `out` and copies into the new bytes (GCC 12 reports a false overflow for a range insert
// of a few bytes into a vector that starts empty).
inline void append_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <class T>
void append_le(std::vector<uint8_t>& out, T v) {
  append_bytes(out, &v, sizeof(T));
}

// The IndexBinary header fields that every binary index writes after its fourcc.
inline void append_faiss_binary_header(std::vector<uint8_t>& out, const char fourcc[4], int64_t bits, int32_t code_size,
                                       int64_t ntotal) {
  append_bytes(out, fourcc, 4);
  append_le<int32_t>(out, static_cast<int32_t>(bits));  // d
  append_le<int32_t>(out, code_size);
  append_le<int64_t>(out, ntotal);
  append_le<uint8_t>(out, 1);   // is_trained
  append_le<int32_t>(out, 1);   // metric_type: METRIC_L2
}

// The IBxF record up to (and including) the codes' byte count; the codes themselves follow.
inline std::vector<uint8_t> faiss_flat_prefix(CodesView codes) {
  std::vector<uint8_t> out;
  append_faiss_binary_header(out, "IBxF", codes.bits, static_cast<int32_t>(codes.code_bytes()), codes.count);
  append_le<uint64_t>(out, static_cast<uint64_t>(codes.size_bytes()));
  return out;
}

}  // namespace detail

// Writes a FAISS IndexBinaryFlat file (atomically).
inline void export_faiss_binary_flat(const std::string& path, CodesView codes) {
  detail::check_faiss_codes(codes, "export_faiss_binary_flat");
  const std::vector<uint8_t> prefix = detail::faiss_flat_prefix(codes);
  io::AtomicFile f(path);
  f.write(prefix.data(), prefix.size());
  f.write(codes.data, static_cast<size_t>(codes.size_bytes()));
  f.commit();
}

// Writes a FAISS IndexBinaryIDMap wrapping an IndexBinaryFlat: search returns ids[row].
inline void export_faiss_binary_idmap(const std::string& path, CodesView codes, std::span<const int64_t> ids) {
  detail::check_faiss_codes(codes, "export_faiss_binary_idmap");
  VTS_CHECK(static_cast<int64_t>(ids.size()) == codes.count, "export_faiss_binary_idmap: expected one id per code (",
            codes.count, "), found ", ids.size());
  std::vector<uint8_t> head;
  detail::append_faiss_binary_header(head, "IBMp", codes.bits, 0, codes.count);
  const std::vector<uint8_t> prefix = detail::faiss_flat_prefix(codes);
  head.insert(head.end(), prefix.begin(), prefix.end());
  std::vector<uint8_t> tail;
  detail::append_le<uint64_t>(tail, static_cast<uint64_t>(ids.size()));
  io::AtomicFile f(path);
  f.write(head.data(), head.size());
  f.write(codes.data, static_cast<size_t>(codes.size_bytes()));
  f.write(tail.data(), tail.size());
  if (!ids.empty()) f.write(ids.data(), ids.size() * sizeof(int64_t));
  f.commit();
}

// Writes the Milvus numpy bulk-insert pair: vectors (uint8, n × K/8) and ids (int64, n). Empty
// `ids` means 0..n-1.
inline void export_milvus(const std::string& vectors_npy, const std::string& ids_npy, CodesView codes,
                          std::span<const int64_t> ids = {}) {
  check_code_bits(codes.bits, "export_milvus");
  if (io::same_file(vectors_npy, ids_npy))
    throw Error(vts::detail::concat("export_milvus: expected two different files for the vectors and the ids, found '",
                                    vectors_npy, "' and '", ids_npy, "' (the ids would replace the vectors)"));
  VTS_CHECK(ids.empty() || static_cast<int64_t>(ids.size()) == codes.count, "export_milvus: expected one id per code (",
            codes.count, "), found ", ids.size());
  io::Array v;
  v.dtype = io::DType::u8;
  v.shape = {codes.count, codes.code_bytes()};
  v.bytes.assign(codes.data, codes.data + codes.size_bytes());
  std::vector<int64_t> id_values(ids.begin(), ids.end());
  if (ids.empty())
    for (int64_t i = 0; i < codes.count; ++i) id_values.push_back(i);
  const io::Array a = io::make_array(id_values, {codes.count});
  io::write_npy(vectors_npy, v);
  io::write_npy(ids_npy, a);
}

}  // namespace vts::index
