// libFuzzer target for the list-file readers of vts::data (list_dataset.hpp): read_list_file,
// list_first_entry, read_path_list and read_class_names. The first input byte picks the number of
// label columns (1..8); the rest is the file, written to a temporary file.
//
// Oracle: each reader either throws vts::IoError naming the file, or returns what its contract
// says: read_list_file one path, one line number (increasing) and num_classes labels of 0 or 1 per
// entry; read_path_list non-empty paths without surrounding blanks; read_class_names exactly the
// asked number of distinct, non-empty names. Across readers: when read_list_file accepts a file,
// list_first_entry finds its first entry on the same line with 1 + num_classes fields, all labels,
// and read_path_list lists a path on every line read_list_file took an entry from. Any other
// exception, a sanitizer report or a mismatch is a crash.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vts/data/list_dataset.hpp"

using vts_fuzz::fail;
namespace data = vts::data;

namespace {

template <class F>
auto attempt(const std::string& path, F&& f) -> std::optional<decltype(f())> {
  try {
    return f();
  } catch (const vts::IoError& e) {
    if (!std::strstr(e.what(), path.c_str())) fail("IoError does not name the file");
    return std::nullopt;
  }
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void write_seeds(const std::string& dir) {
  auto seed = [&](const std::string& name, int classes, const std::string& text) {
    vts_fuzz::write_file(dir + "/" + name, std::string(1, static_cast<char>(classes - 1)) + text);
  };
  seed("list3", 3, "img/a.jpg 0 1 0\nimg/b.jpg 1 0 1\n\nimg/c.jpg 0 0 1\n");
  seed("list3_crlf", 3, "img/a.jpg\t0 1 0\r\n  img/b.jpg 1 0 1\r\n\r\n");
  seed("list1_no_newline", 1, "x.png 1");
  seed("list2_bad_label", 2, "x.png 1 2\n");
  seed("list2_missing_path", 2, "a.png 0 1\n0 1\n");
  seed("paths", 1, "  dir with blanks/a b.jpg  \n\nc.png\n");
  seed("classes3", 3, "airplane\n automobile \n\nbird\n");
  seed("classes2_twice", 2, "cat\ncat\n");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return vts_fuzz::write_seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int classes = 1 + data[0] % 8;
  const std::string& path = vts_fuzz::input_file("list", data + 1, size - 1);

  const auto list = attempt(path, [&] { return data::read_list_file(path, classes); });
  if (list) {
    const size_t n = list->images.size();
    if (n == 0 || list->num_classes != classes || list->lines.size() != n ||
        list->labels.size() != n * static_cast<size_t>(classes) || list->path != path)
      fail("read_list_file: inconsistent counts");
    for (const uint8_t l : list->labels)
      if (l > 1) fail("read_list_file: a label other than 0 or 1");
    for (size_t i = 0; i < n; ++i) {
      if (list->images[i].empty()) fail("read_list_file: an empty path");
      if (list->lines[i] < 1 || (i > 0 && list->lines[i] <= list->lines[i - 1])) fail("read_list_file: line numbers");
    }
  }

  const auto first = attempt(path, [&] { return data::list_first_entry(path); });
  if (first && (first->line < 1 || first->fields < 1 || first->labels < 0 || first->labels >= first->fields))
    fail("list_first_entry: inconsistent entry");
  if (list) {
    if (!first) fail("list_first_entry refused a file read_list_file accepted");
    if (first->line != list->lines[0] || first->fields != classes + 1 || first->labels != classes)
      fail("list_first_entry disagrees with read_list_file");
  }

  const auto paths = attempt(path, [&] { return data::read_path_list(path); });
  if (paths) {
    const size_t n = paths->images.size();
    if (n == 0 || paths->lines.size() != n || paths->num_classes != 0 || !paths->labels.empty())
      fail("read_path_list: inconsistent counts");
    for (size_t i = 0; i < n; ++i) {
      const std::string& p = paths->images[i];
      if (p.empty() || blank(p.front()) || blank(p.back())) fail("read_path_list: an untrimmed path");
      if (paths->lines[i] < 1 || (i > 0 && paths->lines[i] <= paths->lines[i - 1])) fail("read_path_list: line numbers");
    }
  }
  if (list) {
    if (!paths) fail("read_path_list refused a file read_list_file accepted");
    for (const int64_t line : list->lines)
      if (!std::binary_search(paths->lines.begin(), paths->lines.end(), line))
        fail("read_path_list skipped a line read_list_file read an entry from");
  }

  const auto names = attempt(path, [&] { return data::read_class_names(path, classes); });
  if (names) {
    if (names->size() != static_cast<size_t>(classes)) fail("read_class_names: wrong count");
    for (size_t i = 0; i < names->size(); ++i) {
      const std::string& s = (*names)[i];
      if (s.empty() || blank(s.front()) || blank(s.back())) fail("read_class_names: an untrimmed name");
      for (size_t j = 0; j < i; ++j)
        if ((*names)[j] == s) fail("read_class_names: a name twice");
    }
  }
  return 0;
}
