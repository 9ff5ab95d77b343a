#pragma once
// Class labels of indexed items as multi-hot bitsets: item i's classes are the set bits of
// `words_per_item` 64-bit words (class c is bit c%64 of word c/64). Single-label data is the
// one-hot special case. Two items are relevant to each other when they share at least one class
// (hashing-spec §4.3), which on bitsets is one AND per word. The index file stores exactly this
// layout, so an opened index hands out a LabelsView without copying.
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "vts/core/error.hpp"

namespace vts::index {

struct LabelsView {
  const uint64_t* words = nullptr;
  int64_t count = 0;
  int64_t classes = 0;

  int64_t words_per_item() const { return (classes + 63) / 64; }
  const uint64_t* item(int64_t i) const { return words + i * words_per_item(); }
  bool has(int64_t i, int64_t c) const { return (item(i)[c >> 6] >> (c & 63)) & 1u; }
  // Do item i of this set and item j of `other` share a class? (Same class count required.)
  bool shares_class(int64_t i, const LabelsView& other, int64_t j) const {
    const uint64_t* a = item(i);
    const uint64_t* b = other.item(j);
    const int64_t w = words_per_item();
    for (int64_t t = 0; t < w; ++t)
      if (a[t] & b[t]) return true;
    return false;
  }
  LabelsView slice(int64_t begin, int64_t end) const {
    VTS_CHECK(0 <= begin && begin <= end && end <= count, "LabelsView::slice: expected 0 <= begin <= end <= ",
              count, ", found [", begin, ", ", end, ")");
    return LabelsView{words + begin * words_per_item(), end - begin, classes};
  }
};

class Labels {
 public:
  Labels() = default;
  Labels(int64_t count, int64_t classes) : count_(count), classes_(classes) {
    VTS_CHECK(count >= 0 && classes > 0, "Labels: expected count >= 0 and classes > 0, found count ", count,
              ", classes ", classes);
    words_.assign(static_cast<size_t>(count * ((classes + 63) / 64)), 0);
  }

  // From a row-major count × classes multi-hot (or one-hot) matrix: any nonzero entry is a class.
  template <class T>
  static Labels from_multi_hot(const T* values, int64_t count, int64_t classes) {
    static_assert(std::is_arithmetic_v<T>);
    Labels l(count, classes);
    for (int64_t i = 0; i < count; ++i)
      for (int64_t c = 0; c < classes; ++c)
        if (values[i * classes + c] != T(0)) l.set(i, c);
    return l;
  }
  template <class T>
  static Labels from_multi_hot(const std::vector<T>& values, int64_t classes) {
    VTS_CHECK(classes > 0 && static_cast<int64_t>(values.size()) % classes == 0,
              "Labels::from_multi_hot: expected a multiple of ", classes, " values, found ", values.size());
    return from_multi_hot(values.data(), static_cast<int64_t>(values.size()) / classes, classes);
  }

  // From one class id per item (single-label data).
  template <class I>
  static Labels from_class_ids(const I* ids, int64_t count, int64_t classes) {
    static_assert(std::is_integral_v<I>);
    Labels l(count, classes);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t c = static_cast<int64_t>(ids[i]);
      if (c < 0 || c >= classes)
        throw Error(vts::detail::concat("Labels::from_class_ids: expected class ids in [0, ", classes,
                                        "), found ", c, " at item ", i));
      l.set(i, c);
    }
    return l;
  }
  template <class I>
  static Labels from_class_ids(const std::vector<I>& ids, int64_t classes) {
    return from_class_ids(ids.data(), static_cast<int64_t>(ids.size()), classes);
  }

  // Adopts words in the LabelsView layout.
  static Labels from_words(std::vector<uint64_t> words, int64_t count, int64_t classes) {
    Labels l;
    l.count_ = count;
    l.classes_ = classes;
    VTS_CHECK(count >= 0 && classes > 0 && static_cast<int64_t>(words.size()) == count * ((classes + 63) / 64),
              "Labels::from_words: expected ", count, " items × ", (classes + 63) / 64, " words, found ",
              words.size(), " words");
    l.words_ = std::move(words);
    return l;
  }

  // Checked: a class id in [C, 64·words) would land in the item's padding bits and silently make
  // items "share" a class that does not exist; beyond that, or a bad item, it writes out of bounds.
  void set(int64_t i, int64_t c) {
    VTS_CHECK(0 <= i && i < count_ && 0 <= c && c < classes_, "Labels::set: expected item in [0, ", count_,
              ") and class in [0, ", classes_, "), found item ", i, ", class ", c);
    words_[static_cast<size_t>(i * words_per_item() + (c >> 6))] |= uint64_t(1) << (c & 63);
  }
  int64_t size() const { return count_; }
  int64_t classes() const { return classes_; }
  int64_t words_per_item() const { return (classes_ + 63) / 64; }
  const std::vector<uint64_t>& words() const { return words_; }
  LabelsView view() const { return LabelsView{words_.data(), count_, classes_}; }
  operator LabelsView() const { return view(); }  // NOLINT: usable wherever a view is

 private:
  std::vector<uint64_t> words_;
  int64_t count_ = 0;
  int64_t classes_ = 0;
};

}  // namespace vts::index
