#pragma once
// Image-list datasets in the DeepHash format: one line per image, "relative/path.jpg 0 1 0 ...",
// the path then num_classes labels of 0 or 1 separated by whitespace. Paths are relative to an
// image root. Images are decoded on demand (stb_image, forced to RGB unless asked for another
// channel count) and transformed. A folder of unlabelled images is a list too (list_image_folder).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vts/data/dataset.hpp"

namespace vts::data {

struct ListFile {
  std::string path;  // the list file, for error messages
  int num_classes = 0;               // 0: unlabelled (a folder of images)
  std::vector<std::string> images;  // paths as written in the file
  std::vector<uint8_t> labels;      // size() x num_classes, each 0 or 1
  std::vector<int64_t> lines;       // 1-based line number of each entry (0: not from a list file)
  std::vector<std::string> class_names;  // the label columns' names where known (class folders)
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

// Parses a list file. Blank lines are ignored; any other malformed line (a field count other than
// 1 + num_classes, a label other than 0 or 1, a missing path) throws vts::IoError naming the file
// and the line. An unreadable file or one without entries throws as well.
inline ListFile read_list_file(const std::string& path, int num_classes) {
  VTS_CHECK(num_classes > 0, "read_list_file: expected num_classes > 0, found ", num_classes);
  std::ifstream in(path);
  if (!in) throw IoError(vts::detail::concat("cannot open list file '", path, "' for reading"));
  ListFile list;
  list.path = path;
  list.num_classes = num_classes;
  std::string line;
  std::vector<std::string_view> fields;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    fields.clear();
    const size_t n = line.size();
    for (size_t i = 0; i < n;) {
      while (i < n && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      const size_t b = i;
      while (i < n && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i > b) fields.emplace_back(line.data() + b, i - b);
    }
    if (fields.empty()) continue;
    auto where = [&] { return vts::detail::concat(path, ":", line_no, ": "); };
    auto is_label = [](std::string_view f) { return f == "0" || f == "1"; };
    if (static_cast<int>(fields.size()) != num_classes + 1) {
      // Name the likely cause: a line of num_classes labels alone has lost its path.
      const bool path_missing = static_cast<int>(fields.size()) == num_classes && is_label(fields[0]);
      throw IoError(vts::detail::concat(where(), "expected an image path and ", num_classes, " labels (",
                                        num_classes + 1, " fields), found ", fields.size(), " fields",
                                        path_missing ? " (the image path is missing)" : ""));
    }
    for (int c = 0; c < num_classes; ++c) {
      const std::string_view f = fields[static_cast<size_t>(c) + 1];
      if (!is_label(f))
        throw IoError(vts::detail::concat(where(), "label ", c + 1, " of ", num_classes,
                                          ": expected 0 or 1, found '", f, "'"));
      list.labels.push_back(f[0] == '1' ? 1 : 0);
    }
    list.images.emplace_back(fields[0]);
    list.lines.push_back(line_no);
  }
  if (in.bad()) throw IoError(vts::detail::concat("error while reading list file '", path, "'"));
  if (list.images.empty())
    throw IoError(vts::detail::concat("list file '", path, "': expected at least one entry, found none"));
  return list;
}

namespace detail {
// `s` without the blanks around it: the characters std::isspace calls blank in the C locale, so a
// line that read_list_file skips as blank is skipped here too.
inline std::string trim_blanks(std::string_view s) {
  constexpr const char* blanks = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(blanks);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(blanks) - b + 1));
}
}  // namespace detail

// A list file's first entry (blank lines skipped): its line, its field count, and its labels — the
// fields after the path when they are all 0 or 1, else 0 (a path alone, or a list of paths that
// hold blanks). Throws vts::IoError when the file cannot be read or holds no entry.
struct ListFirstEntry {
  int64_t line = 0;
  int fields = 0;
  int labels = 0;
};
inline ListFirstEntry list_first_entry(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(vts::detail::concat("cannot open list file '", path, "' for reading"));
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    std::istringstream split(line);
    std::vector<std::string> f;
    for (std::string field; split >> field;) f.push_back(field);
    if (f.empty()) continue;
    const bool labels = std::all_of(f.begin() + 1, f.end(), [](const std::string& x) { return x == "0" || x == "1"; });
    return {line_no, static_cast<int>(f.size()), labels ? static_cast<int>(f.size()) - 1 : 0};
  }
  throw IoError(vts::detail::concat("list file '", path, "': expected at least one entry, found none"));
}

// A list of image paths, one per line (blanks around a path trimmed, blank lines skipped), as an
// unlabelled ListFile. Throws vts::IoError when the file cannot be read or lists nothing.
inline ListFile read_path_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(vts::detail::concat("cannot open list file '", path, "' for reading"));
  ListFile list;
  list.path = path;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (std::string p = detail::trim_blanks(line); !p.empty()) {
      list.images.push_back(std::move(p));
      list.lines.push_back(line_no);
    }
  }
  if (list.images.empty())
    throw IoError(vts::detail::concat("list file '", path, "': expected at least one image path, found none"));
  return list;
}

// Class names, one per line (blank lines ignored): exactly `classes` of them, each once.
inline std::vector<std::string> read_class_names(const std::string& path, int classes) {
  std::ifstream in(path);
  if (!in) throw IoError(vts::detail::concat("cannot open class names file '", path, "' for reading"));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    std::string name = detail::trim_blanks(line);
    if (name.empty()) continue;
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw IoError(vts::detail::concat("class names file '", path, "': '", name, "' appears twice"));
    names.push_back(std::move(name));
  }
  if (static_cast<int>(names.size()) != classes)
    throw IoError(vts::detail::concat("class names file '", path, "': expected ", classes,
                                      " names (one per label column of the lists), found ", names.size()));
  return names;
}

namespace detail {
// By extension, as stb_image decodes them: jpg, jpeg, png, bmp, gif, tga, pnm, pgm, ppm (any case).
inline bool is_image_file_name(const std::string& name) {
  static const char* const extensions[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".pnm", ".pgm", ".ppm"};
  std::string ext = std::filesystem::path(name).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return std::find(std::begin(extensions), std::end(extensions), ext) != std::end(extensions);
}

// For a folder entry that is neither a regular file nor a folder: a broken symbolic link (a file or
// class folder the user meant to include, now missing) throws vts::IoError naming it and where it
// points; another kind of entry (a pipe, a socket, a device) throws when its name is an image's, and
// is passed over like any other non-image file otherwise.
inline void require_listable(const std::filesystem::directory_entry& entry, bool image_name, const char* what,
                             const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status reached = fs::status(entry.path(), ec);  // through a link, what it leads to
  if (fs::is_symlink(entry.symlink_status(ec)) && !fs::exists(reached)) {
    const fs::path target = fs::read_symlink(entry.path(), ec);
    throw IoError(vts::detail::concat(what, " '", dir, "': '", entry.path().string(),
                                      "' is a broken symbolic link (to '", target.string(),
                                      "'); expected an image file or a folder: remove the link or restore its ",
                                      "target"));
  }
  if (!image_name) return;
  const char* kind = fs::is_fifo(reached)               ? "a named pipe"
                     : fs::is_socket(reached)           ? "a socket"
                     : fs::is_block_file(reached)       ? "a block device"
                     : fs::is_character_file(reached)   ? "a character device"
                                                        : "an entry of unknown type";
  throw IoError(vts::detail::concat(what, " '", dir, "': expected '", entry.path().string(),
                                    "' to be an image file, found ", kind));
}

// Throws vts::IoError "<what> '<dir>': expected a folder, found a file / nothing" unless dir is one.
inline void require_folder(const std::string& dir, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw IoError(vts::detail::concat(what, " '", dir, "': expected a folder, found ",
                                      std::filesystem::exists(dir, ec) ? "a file" : "nothing"));
}
}  // namespace detail

// Every image file (by extension: jpg, jpeg, png, bmp, gif, tga, pnm, pgm, ppm) under `dir`,
// recursively, as an unlabelled list with paths relative to `dir`, sorted so the order does not
// depend on the file system. Symlinked folders are followed once each, not back into the listing
// (a loop, or an image reached twice). Throws vts::IoError when dir is not a folder, holds no image,
// holds a broken symbolic link, or holds something that is neither file nor folder under an image's
// name (a named pipe called x.png).
inline ListFile list_image_folder(const std::string& dir, const std::string& listed_elsewhere = {}) {
  namespace fs = std::filesystem;
  detail::require_folder(dir, "image folder");
  std::error_code ec;
  ListFile list;
  list.path = dir;
  // Symlinked folders are followed, except those that lead back into `dir` (or `listed_elsewhere`,
  // a folder whose images the caller lists anyway) or above it: their images are listed once,
  // under their own path, and a link to a parent (a loop) would otherwise list the same images
  // again at every level until the system's symlink limit.
  const fs::path root = fs::canonical(listed_elsewhere.empty() ? dir : listed_elsewhere, ec);
  auto leads_back = [&](const fs::path& link) {
    std::error_code e;
    const fs::path target = fs::canonical(link, e);
    if (e) return true;  // dangling: nothing to list
    const auto inside = [](const fs::path& p, const fs::path& base) {
      const auto [b, _] = std::mismatch(base.begin(), base.end(), p.begin(), p.end());
      return b == base.end();
    };
    return inside(target, root) || inside(root, target);
  };
  std::set<fs::path> entered;  // folders outside `dir` reached through links, each listed once
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) && it->is_directory(ec)) {
      if (leads_back(it->path()) || !entered.insert(fs::canonical(it->path(), ec)).second)
        it.disable_recursion_pending();
      continue;
    }
    const bool image_name = detail::is_image_file_name(it->path().filename().string());
    if (it->is_regular_file(ec)) {
      if (image_name) list.images.push_back(it->path().lexically_relative(dir).generic_string());  // links kept
      continue;
    }
    if (it->is_directory(ec)) continue;
    // Neither a file nor a folder: a broken link may have been either, so it is never passed over.
    detail::require_listable(*it, image_name, "image folder", dir);
    ec.clear();  // the failed status of a skipped entry is not a failure to list the folder
  }
  if (ec) throw IoError(vts::detail::concat("image folder '", dir, "': cannot list it: ", ec.message()));
  if (list.images.empty())
    throw IoError(vts::detail::concat("image folder '", dir,
                                      "': expected at least one image (.jpg .jpeg .png .bmp .gif .tga .pnm "
                                      ".pgm .ppm), found none"));
  std::sort(list.images.begin(), list.images.end());
  list.lines.assign(list.images.size(), 0);
  return list;
}

// A folder of class folders, torchvision's ImageFolder layout: each folder directly under `dir` is a
// class (its name is the class name; classes numbered in byte order of the names), holding its
// images at any depth. Returns every image, single-labelled, with paths relative to `dir`, in order
// of class then path. Folders whose name starts with '.' are not classes (.git, .ipynb_checkpoints).
// Throws vts::IoError when dir is not a folder, an image lies directly in dir (it would belong to
// no class), a class folder holds no image, there are fewer than two classes, or dir or a class
// folder holds a broken symbolic link (directly in dir, '.'-names are passed over as '.'-folders are).
inline ListFile list_class_folders(const std::string& dir) {
  namespace fs = std::filesystem;
  detail::require_folder(dir, "class folders");
  std::error_code ec;
  std::vector<std::string> classes;
  for (fs::directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec)) {
      if (!name.empty() && name[0] != '.') classes.push_back(name);
    } else if (it->is_regular_file(ec)) {
      if (detail::is_image_file_name(name))
        throw IoError(vts::detail::concat("class folders '", dir, "': expected every image inside a class folder (",
                                          dir, "/<class>/...), found '", name, "' directly in it"));
    } else if (!name.empty() && name[0] != '.') {  // like '.'-folders, '.'-entries are no classes
      detail::require_listable(*it, false, "class folders", dir);
      ec.clear();
    }
  }
  if (ec) throw IoError(vts::detail::concat("class folders '", dir, "': cannot list it: ", ec.message()));
  std::sort(classes.begin(), classes.end());
  if (classes.size() < 2)
    throw IoError(vts::detail::concat("class folders '", dir, "': expected at least two class folders (",
                                      dir, "/<class>/<image>), found ", classes.size(),
                                      classes.empty() ? "" : vts::detail::concat(" ('", classes[0], "')")));
  ListFile out;
  out.path = dir;
  out.num_classes = static_cast<int>(classes.size());
  out.class_names = classes;
  for (size_t c = 0; c < classes.size(); ++c) {
    const ListFile one = list_image_folder((fs::path(dir) / classes[c]).string(), dir);
    for (const std::string& rel : one.images) {
      out.images.push_back(classes[c] + "/" + rel);
      for (size_t k = 0; k < classes.size(); ++k) out.labels.push_back(k == c ? 1 : 0);
    }
  }
  out.lines.assign(out.images.size(), 0);
  return out;
}

// The entries `ids` of `list`, in that order.
inline ListFile select_entries(const ListFile& list, const std::vector<int64_t>& ids) {
  ListFile out;
  out.path = list.path;
  out.num_classes = list.num_classes;
  out.class_names = list.class_names;
  const auto c = static_cast<size_t>(list.num_classes);
  for (const int64_t i : ids) {
    const auto u = static_cast<size_t>(i);
    out.images.push_back(list.images[u]);
    out.labels.insert(out.labels.end(), list.labels.begin() + static_cast<ptrdiff_t>(u * c),
                      list.labels.begin() + static_cast<ptrdiff_t>((u + 1) * c));
    out.lines.push_back(list.lines[u]);
  }
  return out;
}

// Decoded images after a transform's resize step, kept in memory up to a byte budget and shared
// by the datasets of one protocol (train, query, database: same files, same resize). A photo costs
// ~100 ms to decode at 12 megapixels; once resized (shorter side 32 for the tiny config, 256 for
// B/16) its crop and normalisation take microseconds to a fraction of a millisecond, so from the
// second epoch on training reads memory instead. Entries are never evicted:
// every epoch visits every image, so "the first images that fit" is as good as any policy and
// never thrashes. The outputs are the same bits as without the cache (the resize of a whole image
// computes each pixel as the cropped-region resize does). Thread-safe.
class ResizedImageCache {
 public:
  explicit ResizedImageCache(int64_t budget_bytes) : budget_(budget_bytes) {
    VTS_CHECK(budget_bytes >= 0, "ResizedImageCache: expected a budget >= 0 bytes, found ", budget_bytes);
  }
  std::shared_ptr<const ImageU8> find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = images_.find(key);
    return it == images_.end() ? nullptr : it->second;
  }
  // Keeps img under key if it fits in the budget (and key is new).
  void insert(const std::string& key, std::shared_ptr<const ImageU8> img) {
    const auto cost = static_cast<int64_t>(img->pixels.size() + key.size() + kEntryOverhead);
    std::lock_guard lock(mutex_);
    if (bytes_ + cost > budget_) {
      refused_ = true;
      return;
    }
    if (images_.emplace(key, std::move(img)).second) bytes_ += cost;
  }
  int64_t bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }
  int64_t budget() const { return budget_; }
  size_t size() const {
    std::lock_guard lock(mutex_);
    return images_.size();
  }
  bool full() const {  // an image did not fit: some items are decoded on every visit
    std::lock_guard lock(mutex_);
    return refused_;
  }

 private:
  static constexpr size_t kEntryOverhead = 128;  // map node, shared_ptr block, ImageU8 (approximate)
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const ImageU8>> images_;
  int64_t budget_ = 0, bytes_ = 0;
  bool refused_ = false;
};

class ListDataset final : public Dataset {
 public:
  // Item i is image_root / list.images[i], decoded to `channels` channels (3: RGB, 1: grey); the
  // transform must have a fixed output size.
  ListDataset(ListFile list, std::string image_root, ImageTransform transform, int channels = 3)
      : list_(std::move(list)), root_(std::move(image_root)), transform_(std::move(transform)), channels_(channels) {
    VTS_CHECK(channels_ >= 1 && channels_ <= 4, "ListDataset: expected 1..4 channels, found ", channels_);
    // A ListFile built in code rather than read from a file may be ragged: get_label() would read
    // past the labels and an image error would read past the line numbers.
    VTS_CHECK(list_.num_classes >= 0 && list_.labels.size() == list_.images.size() * static_cast<size_t>(list_.num_classes),
              "ListDataset: expected ", list_.images.size(), " images x ", list_.num_classes, " classes = ",
              list_.images.size() * static_cast<size_t>(std::max(list_.num_classes, 0)), " labels, found ",
              list_.labels.size());
    VTS_CHECK(list_.lines.empty() || list_.lines.size() == list_.images.size(), "ListDataset: expected one line number ",
              "per image (", list_.images.size(), ") or none, found ", list_.lines.size());
    VTS_CHECK(transform_.fixed_output(), "ListDataset: expected a transform with a fixed output size (a crop "
                                         "or an exact resize), found one whose output follows the image size");
    const auto [h, w] = transform_.output_size(1, 1);
    spec_ = ImageSpec{channels_, h, w};
    after_resize_ = transform_;
    after_resize_.resize = ImageTransform::Resize::none;
  }

  // Keeps the resized images in `cache` (shared with other datasets of the same files; null: none).
  void set_cache(std::shared_ptr<ResizedImageCache> cache) { cache_ = std::move(cache); }
  const std::shared_ptr<ResizedImageCache>& cache() const { return cache_; }

  int64_t size() const override { return list_.size(); }
  int num_classes() const override { return list_.num_classes; }
  ImageSpec spec() const override { return spec_; }
  void get(int64_t i, float* image, float* label, Generator& aug_rng) const override {
    check_index(i);
    thread_local ImageU8 decoded;  // reused: a worker decodes many images of similar size
    const std::string file = source(i);
    try {
      if (cache_) {
        const std::string key = cache_key(file);
        std::shared_ptr<const ImageU8> resized = cache_->find(key);
        if (!resized) {
          decode_image(file, channels_, decoded);
          const auto [rh, rw] = transform_.resized_size(decoded.height, decoded.width);
          resized = std::make_shared<const ImageU8>(resize_bilinear(decoded, rh, rw));
          cache_->insert(key, resized);
        }
        after_resize_.apply(resized->pixels.data(), resized->height, resized->width, channels_, image, aug_rng);
      } else {
        decode_image(file, channels_, decoded);
        transform_.apply(decoded.pixels.data(), decoded.height, decoded.width, channels_, image, aug_rng);
      }
    } catch (const IoError& e) {
      throw IoError(vts::detail::concat(e.what(), " (", where(i), ")"));
    } catch (const Error& e) {
      throw Error(vts::detail::concat("image '", file, "' (", where(i), "): ", e.what()));
    }
    get_label(i, label);
  }
  void get_label(int64_t i, float* label) const override {
    check_index(i);
    const uint8_t* row = list_.labels.data() + i * list_.num_classes;
    for (int c = 0; c < list_.num_classes; ++c) label[c] = row[c];
  }
  std::string source(int64_t i) const override {
    check_index(i);
    const std::string& rel = list_.images[static_cast<size_t>(i)];
    return root_.empty() ? rel : (std::filesystem::path(root_) / rel).string();
  }

  const ListFile& list() const { return list_; }
  const ImageTransform& transform() const { return transform_; }

 private:
  std::string where(int64_t i) const {
    const int64_t line = list_.lines.empty() ? 0 : list_.lines[static_cast<size_t>(i)];
    return line > 0 ? vts::detail::concat("listed at ", list_.path, ":", line) : "in " + list_.path;
  }

  // The file, the channels it is decoded to and the resize step: what the cached pixels depend on.
  std::string cache_key(const std::string& file) const {
    return vts::detail::concat(file, '\n', channels_, ' ', static_cast<int>(transform_.resize), ' ',
                               transform_.resize_height, ' ', transform_.resize_width, ' ', transform_.resize_shorter);
  }

  ListFile list_;
  std::string root_;
  ImageTransform transform_, after_resize_;  // after_resize_: the same without its resize step
  std::shared_ptr<ResizedImageCache> cache_;
  int channels_ = 3;
  ImageSpec spec_;
};

}  // namespace vts::data
