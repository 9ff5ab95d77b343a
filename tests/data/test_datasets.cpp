#include <stb_image_write.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <limits>
#include <set>

#include "test_util.hpp"
#include "vts/data/data.hpp"

using Catch::Matchers::Contains;
using vts::data::make_protocol;
using vts::data::PoolDataset;
using vts::data::ProtocolOptions;
using vts_test::message_of;

namespace {

const vts::data::PoolDataset& pool_ds(const std::shared_ptr<vts::data::Dataset>& d) {
  auto* p = dynamic_cast<const PoolDataset*>(d.get());
  REQUIRE(p != nullptr);
  return *p;
}

int class_of(const vts::data::Dataset& d, int64_t i) {
  std::vector<float> row(size_t(d.num_classes()));
  d.get_label(i, row.data());
  REQUIRE(std::count(row.begin(), row.end(), 1.0f) == 1);
  REQUIRE(std::count(row.begin(), row.end(), 0.0f) == long(row.size()) - 1);
  return int(std::find(row.begin(), row.end(), 1.0f) - row.begin());
}

std::vector<int64_t> per_class_counts(const vts::data::Dataset& d) {
  std::vector<int64_t> n(size_t(d.num_classes()), 0);
  for (int64_t i = 0; i < d.size(); ++i) ++n[size_t(class_of(d, i))];
  return n;
}

// Checks the three index sets of a pool protocol: sizes, no duplicates inside a set, and which
// sets may overlap.
void check_disjoint(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::set<int64_t> sa(a.begin(), a.end());
  for (int64_t x : b) REQUIRE(sa.count(x) == 0);
}
void check_unique(const std::vector<int64_t>& a) { REQUIRE(std::set<int64_t>(a.begin(), a.end()).size() == a.size()); }

// Fashion-MNIST-shaped IDX files: train n_train, test n_test images, label = pooled index % 10,
// pixel p of pooled image k = (k * 7 + p) & 255, so an output identifies its image.
void write_fashion(const vts_test::TempDir& dir, int n_train, int n_test) {
  auto write = [&](const std::string& prefix, int first, int n) {
    std::vector<uint8_t> px(size_t(n) * 784);
    std::vector<uint8_t> lb(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      lb[size_t(i)] = uint8_t((first + i) % 10);
      for (int p = 0; p < 784; ++p) px[size_t(i) * 784 + p] = uint8_t(((first + i) * 7 + p) & 255);
    }
    vts_test::write_gz(dir / (prefix + "-images-idx3-ubyte.gz"),
                       vts_test::idx_bytes({uint32_t(n), 28, 28}, px));
    vts_test::write_gz(dir / (prefix + "-labels-idx1-ubyte.gz"), vts_test::idx_bytes({uint32_t(n)}, lb));
  };
  write("train", 0, n_train);
  write("t10k", n_train, n_test);
}

// CIFAR-10 binary batches: `total` records over the six files, label = k % 10, plane value
// (k + 50 c + p) & 255 for pooled record k, channel c, pixel p.
void write_cifar(const std::string& folder, int total) {
  std::filesystem::create_directories(folder);
  const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  int k = 0;
  for (int f = 0; f < 6; ++f) {
    const int n = total * (f + 1) / 6 - total * f / 6;
    std::vector<uint8_t> bytes;
    for (int r = 0; r < n; ++r, ++k) {
      bytes.push_back(uint8_t(k % 10));
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p) bytes.push_back(uint8_t((k + 50 * c + p) & 255));
    }
    vts_test::write_plain(folder + "/" + names[f], bytes);
  }
}

}  // namespace

TEST_CASE("data: fashion-mnist protocol on synthetic IDX files", "[data][fashion]") {
  vts_test::TempDir dir;
  write_fashion(dir, 6000, 650);  // 665 per class
  ProtocolOptions opt;
  opt.data_dir = dir.path.string();
  opt.seed = 7;
  const auto split = make_protocol("fashion-mnist", opt);
  CHECK(split.name == "fashion-mnist");
  CHECK(split.topk == -1);
  CHECK(split.num_classes == 10);
  REQUIRE(split.query->size() == 1000);
  REQUIRE(split.train->size() == 5000);
  REQUIRE(split.database->size() == 650);
  CHECK(per_class_counts(*split.query) == std::vector<int64_t>(10, 100));
  CHECK(per_class_counts(*split.train) == std::vector<int64_t>(10, 500));
  CHECK(per_class_counts(*split.database) == std::vector<int64_t>(10, 65));
  const auto &q = pool_ds(split.query).indices(), &t = pool_ds(split.train).indices(),
             &d = pool_ds(split.database).indices();
  check_unique(q), check_unique(t), check_unique(d);
  check_disjoint(q, t), check_disjoint(q, d), check_disjoint(t, d);
  // Every split in file order (classes interleaved), so ranking ties carry no class bias.
  CHECK(std::is_sorted(q.begin(), q.end()));
  CHECK(std::is_sorted(t.begin(), t.end()));
  CHECK(std::is_sorted(d.begin(), d.end()));
  std::set<int> first_classes;
  for (int64_t i = 0; i < 20; ++i) first_classes.insert(class_of(*split.query, i));
  CHECK(first_classes.size() > 1);

  CHECK(split.query->spec() == vts::data::ImageSpec{1, 28, 28});
  // Values: (v/255 - 0.2860)/0.3530 of the right pooled image, labels from the right file.
  std::vector<float> img(784), lab(10);
  vts::Generator g(3);
  for (int64_t i : {int64_t(0), int64_t(517), int64_t(649)}) {
    split.database->get(i, img.data(), lab.data(), g);
    const int64_t k = d[size_t(i)];
    CHECK(lab[size_t(k % 10)] == 1.0f);
    for (int p : {0, 1, 300, 783}) {
      const float v = float(((k * 7 + p) & 255));
      CHECK(img[size_t(p)] == (v / 255.0f - 0.2860f) / 0.3530f);
    }
    const std::string src = split.database->source(i);
    if (k < 6000) CHECK(src == (dir / "train-images-idx3-ubyte.gz") + "#" + std::to_string(k));
    else CHECK(src == (dir / "t10k-images-idx3-ubyte.gz") + "#" + std::to_string(k - 6000));
  }

  SECTION("same seed, same split; other seed, other split") {
    const auto again = make_protocol("fashion-mnist", opt);
    CHECK(pool_ds(again.query).indices() == q);
    CHECK(pool_ds(again.train).indices() == t);
    CHECK(pool_ds(again.database).indices() == d);
    opt.seed = 8;
    const auto other = make_protocol("fashion-mnist", opt);
    CHECK(pool_ds(other.query).indices() != q);
    CHECK(pool_ds(other.train).indices() != t);
  }
  SECTION("training augmentation is off unless asked, and then shifts and flips the train split only") {
    std::vector<float> a(784), b(784);
    vts::Generator g1(1), g2(2);
    split.train->get(0, a.data(), lab.data(), g1);
    split.train->get(0, b.data(), lab.data(), g2);
    CHECK(a == b);
    opt.train_augment = true;
    const auto aug = make_protocol("fashion-mnist", opt);
    CHECK(pool_ds(aug.train).indices() == t);  // augmentation does not change the split
    std::set<std::vector<float>> seen;
    for (uint64_t s = 0; s < 16; ++s) {
      vts::Generator gs(s);
      aug.train->get(0, a.data(), lab.data(), gs);
      seen.insert(a);
    }
    CHECK(seen.size() > 4);
    // Translation brings in black (raw 0) borders.
    const float black = (0.0f - 0.2860f) / 0.3530f;
    bool saw_border = false;
    for (const auto& s : seen) saw_border |= std::count(s.begin(), s.end(), black) >= 28;
    CHECK(saw_border);
    vts::Generator g3(5), g4(6);
    aug.query->get(0, a.data(), lab.data(), g3);
    aug.query->get(0, b.data(), lab.data(), g4);
    CHECK(a == b);
  }
}

TEST_CASE("data: fashion-mnist files are checked", "[data][fashion]") {
  vts_test::TempDir dir;
  write_fashion(dir, 20, 10);
  ProtocolOptions opt;
  opt.data_dir = dir.path.string();
  SECTION("too few images per class for the protocol") {
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("fashion-mnist", opt); }),
               Contains("class 0 needs 100 query + 500 train images, found only 3"));
  }
  SECTION("labels disagree with images") {
    vts_test::write_gz(dir / "t10k-labels-idx1-ubyte.gz", vts_test::idx_bytes({9}, std::vector<uint8_t>(9, 1)));
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("fashion-mnist", opt); }),
               Contains(dir / "t10k-labels-idx1-ubyte.gz") && Contains("expected 10 labels") && Contains("found 9"));
  }
  SECTION("label out of range") {
    std::vector<uint8_t> lb(10, 3);
    lb[4] = 10;
    vts_test::write_gz(dir / "t10k-labels-idx1-ubyte.gz", vts_test::idx_bytes({10}, lb));
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("fashion-mnist", opt); }),
               Contains(dir / "t10k-labels-idx1-ubyte.gz") && Contains("item 4") && Contains("found 10"));
  }
  SECTION("wrong image size") {
    vts_test::write_gz(dir / "t10k-images-idx3-ubyte.gz", vts_test::idx_bytes({10, 28, 27}, std::vector<uint8_t>(10 * 28 * 27)));
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("fashion-mnist", opt); }),
               Contains(dir / "t10k-images-idx3-ubyte.gz") && Contains("N x 28 x 28") && Contains("28 x 27"));
  }
  SECTION("missing file names both spellings") {
    std::filesystem::remove(dir / "train-images-idx3-ubyte.gz");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("fashion-mnist", opt); }),
               Contains(dir / "train-images-idx3-ubyte.gz") && Contains(dir / "train-images-idx3-ubyte'"));
  }
  SECTION("uncompressed files are read too") {
    for (const char* base : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"}) {
      const auto arr = vts::data::read_idx(dir / (std::string(base) + ".gz"));
      std::vector<uint32_t> dims(arr.dims.begin(), arr.dims.end());
      vts_test::write_plain(dir / base, vts_test::idx_bytes(dims, arr.data));
      std::filesystem::remove(dir / (std::string(base) + ".gz"));
    }
    const auto pool = vts::data::load_fashion_mnist(dir.path.string());
    CHECK(pool->size() == 30);
    CHECK(pool->labels[25] == 5);
    CHECK(pool->image(25)[3] == uint8_t((25 * 7 + 3) & 255));
  }
}

TEST_CASE("data: fashion-mnist protocol on the real files", "[data][fashion][real]") {
  if (!std::filesystem::exists(std::string(vts::data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed (scripts/install-deps installs it); nothing checked");
    return;
  }
  const auto split = make_protocol("fashion-mnist");
  REQUIRE(split.query->size() == 1000);
  REQUIRE(split.train->size() == 5000);
  REQUIRE(split.database->size() == 64000);
  CHECK(split.topk == -1);
  CHECK(per_class_counts(*split.query) == std::vector<int64_t>(10, 100));
  CHECK(per_class_counts(*split.train) == std::vector<int64_t>(10, 500));
  CHECK(per_class_counts(*split.database) == std::vector<int64_t>(10, 6400));
  const auto &q = pool_ds(split.query).indices(), &t = pool_ds(split.train).indices(),
             &d = pool_ds(split.database).indices();
  check_unique(q), check_unique(t), check_unique(d);
  check_disjoint(q, t), check_disjoint(q, d), check_disjoint(t, d);
  // The pixel statistics the normalisation constants come from.
  const auto& pool = pool_ds(split.query).pool();
  double sum = 0, sq = 0;
  for (uint8_t v : pool.pixels) sum += v / 255.0, sq += (v / 255.0) * (v / 255.0);
  const double n = double(pool.pixels.size()), mean = sum / n;
  CHECK(mean == Approx(0.2860).margin(5e-4));
  CHECK(std::sqrt(sq / n - mean * mean) == Approx(0.3530).margin(5e-4));
}

TEST_CASE("data: cifar10 protocols on synthetic binary batches", "[data][cifar]") {
  vts_test::TempDir dir;
  write_cifar(dir / "cifar-10-batches-bin", 6100);  // 610 per class; the parent folder works too
  ProtocolOptions opt;
  opt.data_dir = dir.path.string();
  opt.seed = 11;
  opt.image_size = 32;
  const auto c10 = make_protocol("cifar10", opt);
  const auto c11 = make_protocol("cifar10-1", opt);
  CHECK(c10.topk == -1);
  REQUIRE(c10.query->size() == 1000);
  REQUIRE(c10.train->size() == 5000);
  REQUIRE(c10.database->size() == 100);
  CHECK(per_class_counts(*c10.database) == std::vector<int64_t>(10, 10));
  const auto &q = pool_ds(c10.query).indices(), &t = pool_ds(c10.train).indices(),
             &d = pool_ds(c10.database).indices();
  check_disjoint(q, t), check_disjoint(q, d), check_disjoint(t, d);
  // cifar10-1: same seed, same query/train; database = train then the rest.
  CHECK(pool_ds(c11.query).indices() == q);
  CHECK(pool_ds(c11.train).indices() == t);
  const auto& d1 = pool_ds(c11.database).indices();
  REQUIRE(d1.size() == 5100);
  CHECK(std::equal(t.begin(), t.end(), d1.begin()));
  CHECK(std::equal(d.begin(), d.end(), d1.begin() + 5000));

  // Pixels: R, G, B planes of the record, normalised with ImageNet mean/std.
  CHECK(c10.query->spec() == vts::data::ImageSpec{3, 32, 32});
  std::vector<float> img(3 * 1024), lab(10);
  vts::Generator g(0);
  c10.query->get(123, img.data(), lab.data(), g);
  const int64_t k = q[123];
  CHECK(lab[size_t(k % 10)] == 1.0f);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  int bad = 0;
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 1024; ++p)
      bad += img[size_t(c * 1024 + p)] != (float((k + 50 * c + p) & 255) / 255.0f - mean[c]) / sd[c];
  CHECK(bad == 0);
  // Records are numbered within their file (write_cifar's split of 6100 records over 6 files).
  {
    const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    int f = 0;
    while (k >= 6100 * (f + 1) / 6) ++f;
    const auto file = dir.path / "cifar-10-batches-bin" / names[f];
    CHECK(c10.query->source(123) == file.string() + "#" + std::to_string(k - 6100 * f / 6));
  }

  SECTION("default size: PIL-bilinear 32 -> 224, identical in train and eval") {
    opt.image_size = 0;
    const auto big = make_protocol("cifar10", opt);
    REQUIRE(big.train->spec() == vts::data::ImageSpec{3, 224, 224});
    const auto& pool = pool_ds(big.train).pool();
    const int64_t kk = pool_ds(big.train).indices()[0];
    std::vector<uint8_t> up(224 * 224 * 3);
    vts::data::resize_bilinear(pool.image(kk), 32, 32, 3, 224, 224, up.data());
    std::vector<float> a(3 * 224 * 224), b(a.size());
    vts::Generator g1(1), g2(2);
    big.train->get(0, a.data(), lab.data(), g1);
    big.train->get(0, b.data(), lab.data(), g2);
    CHECK(a == b);  // no augmentation, even in training
    int wrong = 0;
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 224 * 224; ++p)
        wrong += a[size_t(c * 224 * 224 + p)] != (float(up[size_t(p) * 3 + c]) / 255.0f - mean[c]) / sd[c];
    CHECK(wrong == 0);
  }
  SECTION("cifar10-2: database = train; defaults need 6000 images per class") {
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("cifar10-2", opt); }),
               Contains("cifar10-2") && Contains("1000 query + 5000 train") && Contains("found only 610"));
    opt.query_per_class = 10;
    opt.train_per_class = 50;
    const auto c2 = make_protocol("cifar10-2", opt);
    CHECK(c2.query->size() == 100);
    CHECK(c2.train->size() == 500);
    CHECK(pool_ds(c2.database).indices() == pool_ds(c2.train).indices());
    check_disjoint(pool_ds(c2.query).indices(), pool_ds(c2.train).indices());
  }
  SECTION("other seed, other split") {
    opt.seed = 12;
    CHECK(pool_ds(make_protocol("cifar10", opt).query).indices() != q);
  }
  SECTION("no training augmentation exists for cifar") {
    opt.train_augment = true;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("cifar10", opt); }), Contains("train_augment"));
  }
}

TEST_CASE("data: cifar10 files are checked", "[data][cifar]") {
  vts_test::TempDir dir;
  write_cifar(dir.path.string(), 60);
  ProtocolOptions opt;
  opt.data_dir = dir.path.string();
  SECTION("size not a whole number of records") {
    std::filesystem::resize_file(dir / "data_batch_3.bin", 3073 * 10 - 1);
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::load_cifar10(opt.data_dir); }),
               Contains(dir / "data_batch_3.bin") && Contains("multiple of 3073") && Contains("found 30729 bytes"));
  }
  SECTION("label byte out of range") {
    std::fstream f(dir / "test_batch.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 3073);
    f.put(char(10));
    f.close();
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::load_cifar10(opt.data_dir); }),
               Contains(dir / "test_batch.bin") && Contains("record 2") && Contains("found 10"));
  }
  SECTION("a refused batch leaves the pool as it was") {
    // Found by tests/fuzz/fuzz_cifar10: a label out of range in record 1 threw after the pool had
    // grown by the file's pixels and record 0's label, leaving labels and pixels out of step.
    vts::data::ImagePool pool;
    vts::data::detail::append_cifar_file(dir / "data_batch_1.bin", pool);
    const std::vector<uint8_t> pixels = pool.pixels;
    const std::vector<int32_t> labels = pool.labels;
    {
      std::fstream f(dir / "data_batch_2.bin", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(3073);
      f.put(char(81));
    }
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::detail::append_cifar_file(dir / "data_batch_2.bin", pool); }),
               Contains("record 1") && Contains("found 81"));
    CHECK(pool.labels == labels);
    CHECK(pool.pixels == pixels);
    CHECK(pool.parts.size() == 1);
  }
  SECTION("missing batch file") {
    std::filesystem::remove(dir / "data_batch_5.bin");
    CHECK_THAT(message_of<vts::IoError>([&] { vts::data::load_cifar10(opt.data_dir); }),
               Contains(dir / "data_batch_5.bin"));
  }
  SECTION("no folder given") {
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("cifar10"); }), Contains("data_dir"));
  }
}

namespace {

// A folder of PNG images with list files in DeepHash format, 3 classes.
struct ListFixture {
  vts_test::TempDir dir;
  std::vector<std::vector<uint8_t>> pixels;
  std::vector<std::pair<int, int>> sizes = {{30, 40}, {41, 29}, {24, 24}, {50, 33}};  // h, w
  ListFixture() {
    std::filesystem::create_directories(dir.path / "img" / "sub");
    for (size_t i = 0; i < sizes.size(); ++i) {
      const auto [h, w] = sizes[i];
      std::vector<uint8_t> px(size_t(h) * w * 3);
      for (size_t j = 0; j < px.size(); ++j) px[j] = uint8_t((j * 13 + i * 71) % 251);
      REQUIRE(stbi_write_png(name(i).c_str(), w, h, 3, px.data(), w * 3) != 0);
      pixels.push_back(px);
    }
  }
  std::string rel(size_t i) const { return "sub/im" + std::to_string(i) + ".png"; }
  std::string name(size_t i) const { return (dir.path / "img" / rel(i)).string(); }
};

}  // namespace

TEST_CASE("data: the three list readers agree on what a blank line is", "[data][list]") {
  // read_list_file splits on std::isspace; the path and class-name readers trim the same set, so a
  // line holding only a vertical tab or form feed is skipped by all three (it was a path '\v').
  vts_test::TempDir dir;
  vts_test::write_text(dir / "paths.txt", "\v\n a b.png\f\n\f\r\nc.png\n");
  const auto paths = vts::data::read_path_list(dir / "paths.txt");
  CHECK(paths.images == std::vector<std::string>{"a b.png", "c.png"});
  CHECK(paths.lines == std::vector<int64_t>{2, 4});
  vts_test::write_text(dir / "names.txt", "cat\n\v\ndog\f\n");
  CHECK(vts::data::read_class_names(dir / "names.txt", 2) == std::vector<std::string>{"cat", "dog"});
  vts_test::write_text(dir / "list.txt", "\v\na.png 1 0\n");
  CHECK(vts::data::read_list_file(dir / "list.txt", 2).lines == std::vector<int64_t>{2});
}

TEST_CASE("data: list datasets decode, transform and label images", "[data][list]") {
  ListFixture fx;
  vts_test::write_text(fx.dir / "train.txt", fx.rel(0) + " 1 0 0\n" + fx.rel(1) + " 0 1 1\n\n" + fx.rel(2) +
                                                 "\t0 0 1\r\n");
  auto list = vts::data::read_list_file(fx.dir / "train.txt", 3);
  REQUIRE(list.size() == 3);
  CHECK(list.lines == std::vector<int64_t>{1, 2, 4});  // blank line 3 skipped, still counted
  const auto t = vts::data::ImageTransform::imagenet_eval(24, 20);
  vts::data::ListDataset ds(list, (fx.dir.path / "img").string(), t);
  CHECK(ds.size() == 3);
  CHECK(ds.spec() == vts::data::ImageSpec{3, 20, 20});
  CHECK(ds.source(1) == fx.name(1));
  std::vector<float> img(3 * 20 * 20), expect(img.size()), lab(3);
  for (int64_t i = 0; i < 3; ++i) {
    vts::Generator g(0), g2(0);
    ds.get(i, img.data(), lab.data(), g);
    const auto [h, w] = fx.sizes[size_t(i)];
    t.apply(fx.pixels[size_t(i)].data(), h, w, 3, expect.data(), g2);
    CHECK(img == expect);
  }
  ds.get_label(1, lab.data());
  CHECK(lab == std::vector<float>{0, 1, 1});
  CHECK(vts::data::all_labels(ds) == std::vector<float>{1, 0, 0, 0, 1, 1, 0, 0, 1});

  SECTION("protocol: train random-crops and flips, query and database do not") {
    std::string line21;
    for (int c = 0; c < 21; ++c) line21 += c == 3 ? " 1" : " 0";
    std::string all;
    for (size_t i = 0; i < fx.sizes.size(); ++i) all += fx.rel(i) + line21 + "\n";
    for (const char* f : {"train.txt", "test.txt", "database.txt"}) vts_test::write_text(fx.dir / f, all);
    ProtocolOptions opt;
    opt.data_dir = fx.dir.path.string();
    opt.image_root = (fx.dir.path / "img").string();
    opt.image_size = 16;
    const auto split = make_protocol("nuswide_21", opt);
    CHECK(split.topk == 5000);
    CHECK(split.num_classes == 21);
    CHECK(split.train->size() == 4);
    CHECK(split.database->spec() == vts::data::ImageSpec{3, 16, 16});
    auto* tr = dynamic_cast<const vts::data::ListDataset*>(split.train.get());
    REQUIRE(tr != nullptr);
    CHECK(tr->transform().resize_shorter == 18);  // 16 * 8 / 7 rounded
    CHECK(tr->transform().crop == vts::data::ImageTransform::Crop::random);
    std::vector<float> a(3 * 16 * 16), b(a.size()), l(21);
    std::set<std::vector<float>> seen;
    for (uint64_t s = 0; s < 12; ++s) {
      vts::Generator g(s);
      split.train->get(3, a.data(), l.data(), g);
      seen.insert(a);
    }
    CHECK(seen.size() > 3);
    vts::Generator g1(1), g2(2);
    split.query->get(3, a.data(), l.data(), g1);
    split.query->get(3, b.data(), l.data(), g2);
    CHECK(a == b);
    CHECK(l[3] == 1.0f);
    opt.train_augment = false;
    const auto plain = make_protocol("nuswide_21", opt);
    vts::Generator g3(3);
    plain.train->get(3, b.data(), l.data(), g3);
    CHECK(a == b);  // train without augmentation = eval transform
    std::string line100;
    for (int c = 0; c < 100; ++c) line100 += c == 99 ? " 1" : " 0";
    for (const char* f : {"train.txt", "test.txt", "database.txt"})
      vts_test::write_text(fx.dir / f, fx.rel(0) + line100 + "\n");
    const auto inet = make_protocol("imagenet", opt);
    CHECK(inet.topk == 1000);
    opt.query_per_class = 5;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("imagenet", opt); }),
               Contains("no per-class counts") && Contains("found 5 query"));
    opt.query_per_class = 0;
    CHECK(inet.num_classes == 100);
    CHECK(inet.database->size() == 1);
  }
}

TEST_CASE("data: list file errors name the file and the line", "[data][list]") {
  ListFixture fx;
  const std::string list = fx.dir / "l.txt";
  auto read = [&](const std::string& text) {
    vts_test::write_text(list, text);
    return message_of<vts::IoError>([&] { vts::data::read_list_file(list, 3); });
  };
  CHECK_THAT(read("a.png 1 0 0\nb.png 1 0\n"),
             Contains(list + ":2:") && Contains("4 fields") && Contains("found 3 fields"));
  CHECK_THAT(read("a.png 1 0 0\nb.png 1 0 0 1\n"), Contains(list + ":2:") && Contains("found 5 fields"));
  CHECK_THAT(read("a.png 1 0 0\n\nb.png 1 2 0\n"),
             Contains(list + ":3:") && Contains("label 2 of 3") && Contains("found '2'"));
  CHECK_THAT(read("a.png 1 0 0\nb.png 1 -1 0\n"), Contains(list + ":2:") && Contains("found '-1'"));
  CHECK_THAT(read("a.png 1 0 0\n0 1 0\n"), Contains(list + ":2:") && Contains("image path is missing"));
  CHECK_THAT(read("\n\n"), Contains(list) && Contains("at least one entry"));
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::read_list_file(fx.dir / "none.txt", 3); }),
             Contains(fx.dir / "none.txt"));
  ProtocolOptions opt;
  opt.data_dir = fx.dir.path.string();
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("coco", opt); }), Contains(fx.dir / "train.txt"));
}

TEST_CASE("data: list images that are missing or undecodable fail loudly, also through the loader", "[data][list]") {
  ListFixture fx;
  vts_test::write_text((fx.dir.path / "img" / "sub" / "junk.jpg").string(), "not an image");
  vts_test::write_text(fx.dir / "l.txt", fx.rel(0) + " 1 0 0\nsub/gone.png 0 1 0\nsub/junk.jpg 0 0 1\n");
  auto ds = std::make_shared<vts::data::ListDataset>(vts::data::read_list_file(fx.dir / "l.txt", 3),
                                                     (fx.dir.path / "img").string(),
                                                     vts::data::ImageTransform::imagenet_eval(24, 20));
  std::vector<float> img(3 * 20 * 20), lab(3);
  vts::Generator g;
  ds->get(0, img.data(), lab.data(), g);
  CHECK_THAT(message_of<vts::IoError>([&] { ds->get(1, img.data(), lab.data(), g); }),
             Contains((fx.dir.path / "img" / "sub" / "gone.png").string()) && Contains(fx.dir / "l.txt") &&
                 Contains(":2)"));
  CHECK_THAT(message_of<vts::IoError>([&] { ds->get(2, img.data(), lab.data(), g); }),
             Contains((fx.dir.path / "img" / "sub" / "junk.jpg").string()) && Contains("cannot decode"));
  for (int workers : {0, 2}) {
    vts::data::LoaderOptions lo;
    lo.batch_size = 1;
    lo.num_workers = workers;
    vts::data::Loader loader(ds, lo);
    loader.start_epoch(0);
    vts::data::Batch b;
    REQUIRE(loader.next(b));
    CHECK(b.indices == std::vector<int64_t>{0});
    CHECK_THAT(message_of<vts::IoError>([&] { loader.next(b); }), Contains("gone.png"));
    CHECK_THAT(message_of<vts::IoError>([&] { loader.next(b); }), Contains("gone.png"));  // stays failed
  }
}

namespace {

// Your own images in class folders: 25 "cats" (some one folder deeper), 7 "dogs", and what must not
// count — a hidden folder's image, a text file at the top, a non-image in a class folder.
struct ClassFolderFixture {
  vts_test::TempDir dir;
  std::filesystem::path root = dir.path / "photos";
  explicit ClassFolderFixture(int cats = 25, int dogs = 7) {
    for (const char* sub : {"cats/indoor", "dogs", ".thumbnails"}) std::filesystem::create_directories(root / sub);
    for (int i = 0; i < cats; ++i) png(std::string(i % 3 == 0 ? "cats/indoor/c" : "cats/c") + std::to_string(i) + ".png", i);
    for (int i = 0; i < dogs; ++i) png("dogs/d" + std::to_string(i) + ".PNG", 100 + i);
    png(".thumbnails/t.png", 200);
    vts_test::write_text((root / "README.txt").string(), "my photos\n");
    vts_test::write_text((root / "dogs" / "notes.txt").string(), "good dogs\n");
  }
  // A 20x24 image whose pixels name it (seed).
  void png(const std::string& rel, int seed) const {
    std::vector<uint8_t> px(20 * 24 * 3);
    for (size_t j = 0; j < px.size(); ++j) px[j] = uint8_t((j * 7 + size_t(seed) * 31) % 253);
    REQUIRE(stbi_write_png((root / rel).c_str(), 24, 20, 3, px.data(), 24 * 3) != 0);
  }
  ProtocolOptions options(uint64_t seed = 3) const {
    ProtocolOptions opt;
    opt.data_dir = root.string();
    opt.image_size = 16;
    opt.seed = seed;
    return opt;
  }
};

std::vector<std::string> sources(const vts::data::Dataset& d) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < d.size(); ++i) out.push_back(d.source(i));
  return out;
}

}  // namespace

TEST_CASE("data: folder protocol: your own images in class folders, split per class by seed", "[data][folder]") {
  ClassFolderFixture fx;
  const vts::data::ListFile all = vts::data::list_class_folders(fx.root.string());
  CHECK(all.class_names == std::vector<std::string>{"cats", "dogs"});
  REQUIRE(all.size() == 32);
  CHECK(all.images[0] == "cats/c1.png");  // byte order: "c1.png" < "c10.png" < ... < "indoor/..."
  CHECK(all.images[24] == "cats/indoor/c9.png");
  CHECK(all.images[25] == "dogs/d0.PNG");
  CHECK(std::vector<uint8_t>(all.labels.begin(), all.labels.begin() + 2) == std::vector<uint8_t>{1, 0});
  CHECK(std::vector<uint8_t>(all.labels.end() - 2, all.labels.end()) == std::vector<uint8_t>{0, 1});

  const auto split = make_protocol("folder", fx.options());
  CHECK(split.name == "folder");
  CHECK(split.num_classes == 2);
  CHECK(split.class_names == all.class_names);
  CHECK(split.topk == -1);
  // 10 % of each class rounded, at least one: 3 cats and 1 dog; everything else trains and is searched.
  CHECK(per_class_counts(*split.query) == std::vector<int64_t>{3, 1});
  CHECK(per_class_counts(*split.train) == std::vector<int64_t>{22, 6});
  const auto q = sources(*split.query), tr = sources(*split.train), db = sources(*split.database);
  CHECK(std::set<std::string>(tr.begin(), tr.end()) == std::set<std::string>(db.begin(), db.end()));
  std::set<std::string> everything(q.begin(), q.end());
  for (const auto& d : db) CHECK(everything.insert(d).second);  // query and database disjoint
  CHECK(everything.size() == 32);
  CHECK(everything.begin()->starts_with(fx.root.string() + "/cats/"));
  // Not class-grouped (mAP breaks distance ties by database position): the 6 dogs are spread out.
  std::vector<size_t> dog_positions;
  for (size_t i = 0; i < db.size(); ++i)
    if (db[i].find("/dogs/") != std::string::npos) dog_positions.push_back(i);
  REQUIRE(dog_positions.size() == 6);
  CHECK(dog_positions.back() - dog_positions.front() > 6);

  SECTION("a seed names the split") {
    CHECK(sources(*make_protocol("folder", fx.options()).query) == q);
    CHECK(sources(*make_protocol("folder", fx.options(4)).query) != q);
  }
  SECTION("per-class counts; the database stays every non-query image") {
    ProtocolOptions opt = fx.options();
    opt.query_per_class = 2;
    opt.train_per_class = 3;
    const auto s = make_protocol("folder", opt);
    CHECK(per_class_counts(*s.query) == std::vector<int64_t>{2, 2});
    CHECK(per_class_counts(*s.train) == std::vector<int64_t>{3, 3});
    CHECK(per_class_counts(*s.database) == std::vector<int64_t>{23, 5});
    opt.query_per_class = 5;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }),
               Contains("class 'dogs'") && Contains("5 query + 3 train") && Contains("found only 7"));
  }
  SECTION("images as the model sees them: RGB or grey, train augmented unless asked not to") {
    std::vector<float> a(3 * 16 * 16), b(a.size()), lab(2);
    vts::Generator g1(1), g2(1);
    split.query->get(0, a.data(), lab.data(), g1);
    const auto px = vts::data::decode_image(split.query->source(0));
    vts::data::ImageTransform::imagenet_eval(18, 16).apply(px.pixels.data(), px.height, px.width, 3, b.data(), g2);
    CHECK(a == b);
    ProtocolOptions opt = fx.options();
    opt.channels = 1;
    const auto grey = make_protocol("folder", opt);
    CHECK(grey.database->spec() == vts::data::ImageSpec{1, 16, 16});
    const auto t1 = vts::data::eval_transform("folder", 16, 0, 1);
    REQUIRE(t1.mean.size() == 1);
    CHECK(t1.mean[0] == Approx((0.485 + 0.456 + 0.406) / 3));
    std::vector<float> c(16 * 16), d(c.size());
    grey.query->get(0, c.data(), lab.data(), g1);
    const auto gpx = vts::data::decode_image(grey.query->source(0), 1);
    t1.apply(gpx.pixels.data(), gpx.height, gpx.width, 1, d.data(), g2);
    CHECK(c == d);
    std::set<std::vector<float>> seen;
    for (uint64_t s = 0; s < 8; ++s) {
      vts::Generator g(s);
      split.train->get(0, a.data(), lab.data(), g);
      seen.insert(a);
    }
    CHECK(seen.size() > 2);
    opt.channels = 3;
    opt.train_augment = false;
    vts::Generator g3(5), g4(5);
    const auto plain = make_protocol("folder", opt);
    const auto db_sources = sources(*plain.database);
    const auto at = std::find(db_sources.begin(), db_sources.end(), plain.train->source(0));
    REQUIRE(at != db_sources.end());
    plain.train->get(0, a.data(), lab.data(), g3);
    plain.database->get(at - db_sources.begin(), b.data(), lab.data(), g4);
    CHECK(a == b);
  }
}

TEST_CASE("data: the resized-image cache gives the uncached bits and keeps to its budget", "[data][folder][cache]") {
  ClassFolderFixture fx(9, 4);
  ProtocolOptions opt = fx.options();
  const auto plain = make_protocol("folder", opt);
  opt.image_cache_bytes = 1 << 20;
  const auto cached = make_protocol("folder", opt);
  auto* tr = dynamic_cast<const vts::data::ListDataset*>(cached.train.get());
  auto* db = dynamic_cast<const vts::data::ListDataset*>(cached.database.get());
  REQUIRE((tr != nullptr && db != nullptr));
  const auto cache = tr->cache();
  REQUIRE(cache != nullptr);
  CHECK(db->cache() == cache);  // one cache for the splits of a protocol
  std::vector<float> a(3 * 16 * 16), b(a.size()), lab(2);
  for (int epoch = 0; epoch < 3; ++epoch)  // the first epoch fills the cache, the others read it
    for (int64_t i = 0; i < cached.train->size(); ++i) {
      vts::Generator g1(uint64_t(epoch * 100 + i)), g2(uint64_t(epoch * 100 + i));  // random crops and flips
      plain.train->get(i, a.data(), lab.data(), g1);
      cached.train->get(i, b.data(), lab.data(), g2);
      REQUIRE(a == b);
      CHECK(g1.next_u64() == g2.next_u64());  // the same draws
    }
  CHECK(cache->size() == size_t(cached.train->size()));
  // Loader workers share the cache: two workers, a fresh cache, the same batches as without one.
  {
    ProtocolOptions o = fx.options();
    o.image_cache_bytes = 1 << 20;
    const auto fresh = make_protocol("folder", o);
    for (int epoch = 0; epoch < 2; ++epoch) {
      vts::data::Loader with(fresh.train, {.batch_size = 4, .shuffle = true, .num_workers = 2, .seed = 9});
      vts::data::Loader without(plain.train, {.batch_size = 4, .shuffle = true, .num_workers = 0, .seed = 9});
      with.start_epoch(epoch);
      without.start_epoch(epoch);
      vts::data::Batch b1, b2;
      while (without.next(b1)) {
        REQUIRE(with.next(b2));
        REQUIRE(b1.images == b2.images);
      }
      CHECK(!with.next(b2));
    }
    CHECK(dynamic_cast<const vts::data::ListDataset&>(*fresh.train).cache()->size() == size_t(fresh.train->size()));
  }
  // The database's images are the train split's (same resize): read from the cache; the queries are new.
  for (int64_t i = 0; i < cached.database->size(); ++i) {
    vts::Generator g1(0), g2(0);
    plain.database->get(i, a.data(), lab.data(), g1);
    cached.database->get(i, b.data(), lab.data(), g2);
    REQUIRE(a == b);
  }
  CHECK(cache->size() == size_t(cached.train->size()));
  for (int64_t i = 0; i < cached.query->size(); ++i) {
    vts::Generator g(0);
    cached.query->get(i, b.data(), lab.data(), g);
  }
  CHECK(cache->size() == 13);
  CHECK(!cache->full());
  // 18x21 RGB after the resize (the shorter side to 16 * 8 / 7): 1,134 bytes of pixels an image,
  // plus the key and bookkeeping; a 5,000-byte budget holds a few, the others are decoded each time.
  ProtocolOptions small = fx.options();
  small.image_cache_bytes = 5000;
  const auto tight = make_protocol("folder", small);
  for (int64_t i = 0; i < tight.database->size(); ++i) {
    vts::Generator g1(0), g2(0);
    plain.database->get(i, a.data(), lab.data(), g1);
    tight.database->get(i, b.data(), lab.data(), g2);
    REQUIRE(a == b);
  }
  const auto& tc = dynamic_cast<const vts::data::ListDataset&>(*tight.database).cache();
  CHECK(tc->full());
  CHECK(tc->bytes() <= 5000);
  CHECK(tc->bytes() > 5000 - 1500);  // filled to within one image
  CHECK((tc->size() >= 3 && tc->size() < size_t(tight.database->size())));
  // Grey and RGB decodes of the same files do not share entries.
  vts::data::ListDataset grey(vts::data::list_class_folders(fx.root.string()), fx.root.string(),
                              vts::data::eval_transform("folder", 16, 0, 1), 1);
  grey.set_cache(cache);
  std::vector<float> g(16 * 16), gp(g.size());
  vts::data::ListDataset grey_plain(vts::data::list_class_folders(fx.root.string()), fx.root.string(),
                                    vts::data::eval_transform("folder", 16, 0, 1), 1);
  vts::Generator r1(0), r2(0);
  grey.get(0, g.data(), lab.data(), r1);
  grey_plain.get(0, gp.data(), lab.data(), r2);
  CHECK(g == gp);
  CHECK(cache->size() == 14);
}

TEST_CASE("data: image folders list each image once, whatever the symlinked folders", "[data][folder]") {
  ClassFolderFixture fx(4, 2);
  namespace fs = std::filesystem;
  const fs::path outside = fx.dir.path / "elsewhere";
  fs::create_directories(outside);
  fx.png("../elsewhere/e.png", 7);
  fs::create_directory_symlink("..", fx.root / "cats" / "up");          // a loop: cats/up/cats/up/...
  fs::create_directory_symlink(fx.root / "dogs", fx.root / "cats" / "d");  // back into the folder
  fs::create_directory_symlink(outside, fx.root / "cats" / "out1");      // outside, linked twice
  fs::create_directory_symlink(outside, fx.root / "cats" / "out2");
  // Alone, cats lists its 4 images, the dogs through cats/d (outside cats), and the outside folder
  // once, under whichever of its two links the listing met first; the loop adds nothing.
  const vts::data::ListFile cats = vts::data::list_image_folder((fx.root / "cats").string());
  REQUIRE(cats.size() == 4 + 2 + 1);
  CHECK(std::vector<std::string>(cats.images.begin(), cats.images.begin() + 6) ==
        std::vector<std::string>{"c1.png", "c2.png", "d/d0.PNG", "d/d1.PNG", "indoor/c0.png", "indoor/c3.png"});
  CHECK((cats.images[6] == "out1/e.png" || cats.images[6] == "out2/e.png"));
  // As a class folder, cats/d leads back into the folder of classes: the dogs are only dogs.
  const auto all = vts::data::list_class_folders(fx.root.string());
  CHECK(all.size() == 4 + 1 + 2);
  CHECK(std::count_if(all.images.begin(), all.images.end(), [](const std::string& p) {
          return p.find("d0.PNG") != std::string::npos;
        }) == 1);
}

TEST_CASE("data: a broken symbolic link in the folders is an error that names it, not a file passed over",
          "[data][folder]") {
  ClassFolderFixture fx(4, 2);
  namespace fs = std::filesystem;
  // In a class folder: an image whose target was moved, and a link to a folder that is gone.
  fs::create_symlink(fx.dir.path / "moved.png", fx.root / "cats" / "c9.png");
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains((fx.root / "cats" / "c9.png").string()) && Contains("broken symbolic link") &&
                 Contains((fx.dir.path / "moved.png").string()));
  CHECK_THAT(message_of<vts::IoError>([&] { vts::data::list_image_folder((fx.root / "cats").string()); }),
             Contains("c9.png") && Contains("broken symbolic link"));
  fs::remove(fx.root / "cats" / "c9.png");
  fs::create_directory_symlink(fx.dir.path / "gone", fx.root / "dogs" / "more");
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains((fx.root / "dogs" / "more").string()) && Contains("broken symbolic link"));
  fs::remove(fx.root / "dogs" / "more");
  // Directly in the folder of classes: a class folder whose target is gone; a '.'-name is no class.
  fs::create_directory_symlink(fx.dir.path / "gone", fx.root / "birds");
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains((fx.root / "birds").string()) && Contains("broken symbolic link"));
  fs::remove(fx.root / "birds");
  fs::create_directory_symlink(fx.dir.path / "gone", fx.root / ".cache");
  const auto split = make_protocol("folder", fx.options());
  CHECK(split.query->size() + split.database->size() == 6);
  // Neither file nor folder: refused under an image's name, passed over under another, as a text file is.
  REQUIRE(::mkfifo((fx.root / "cats" / "pipe").c_str(), 0600) == 0);
  CHECK(make_protocol("folder", fx.options()).database->size() == 4);
  REQUIRE(::mkfifo((fx.root / "cats" / "pipe.png").c_str(), 0600) == 0);
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains((fx.root / "cats" / "pipe.png").string() + "' to be an image file, found a named pipe"));
}

TEST_CASE("data: per-class counts that leave a class no training image are refused, however large",
          "[data][folder][fashion]") {
  constexpr int64_t huge = std::numeric_limits<int64_t>::max();
  SECTION("folder") {
    ClassFolderFixture fx(25, 7);
    ProtocolOptions opt = fx.options();
    opt.query_per_class = 7;  // every dog a query: none left to train
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }),
               Contains("class 'dogs'") && Contains("7 query + 1 train") && Contains("found only 7"));
    opt.query_per_class = huge;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }),
               Contains("class 'cats'") && Contains(std::to_string(huge) + " query") && Contains("found only 25"));
    opt.query_per_class = 1;
    opt.train_per_class = huge;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }),
               Contains(std::to_string(huge) + " train images") && Contains("found only 25"));
  }
  SECTION("fashion-mnist") {
    vts_test::TempDir dir;
    write_fashion(dir, 20, 10);  // 3 images per class
    ProtocolOptions opt;
    opt.data_dir = dir.path.string();
    opt.query_per_class = huge;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("fashion-mnist", opt); }),
               Contains("class 0 needs " + std::to_string(huge) + " query + 500 train images, found only 3"));
    opt.query_per_class = 1;
    opt.train_per_class = huge;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("fashion-mnist", opt); }),
               Contains("needs 1 query + " + std::to_string(huge) + " train images, found only 3"));
    opt.query_per_class = 2;
    opt.train_per_class = 1;
    CHECK(make_protocol("fashion-mnist", opt).train->size() == 10);
    opt.query_per_class = -1;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("fashion-mnist", opt); }), Contains("found -1 query"));
  }
}

TEST_CASE("data: a protocol without its data directory names both the flag and the option", "[data]") {
  for (const char* name : {"folder", "list", "imagenet"}) {
    INFO(name);
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol(name, {}); }),
               Contains("needs a data directory (--data-dir, ProtocolOptions::data_dir)") && !Contains("empty path"));
  }
}

TEST_CASE("data: folder protocol errors say what layout was expected", "[data][folder]") {
  ClassFolderFixture fx(25, 1);
  CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", fx.options()); }),
             Contains("class 'dogs'") && Contains("1 query + 1 train") && Contains("found only 1"));
  fx.png("stray.png", 1);
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains("stray.png") && Contains("inside a class folder"));
  std::filesystem::remove(fx.root / "stray.png");
  std::filesystem::remove_all(fx.root / "dogs");
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains("at least two class folders") && Contains("found 1 ('cats')"));
  std::filesystem::create_directories(fx.root / "empty");
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", fx.options()); }),
             Contains((fx.root / "empty").string()) && Contains("at least one image"));
  ProtocolOptions opt = fx.options();
  opt.data_dir = (fx.root / "nope").string();
  CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("folder", opt); }),
             Contains("nope") && Contains("expected a folder, found nothing"));
  opt.data_dir.clear();
  CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }), Contains("data_dir"));
  opt = fx.options();
  opt.channels = 2;
  CHECK_THAT(message_of<vts::Error>([&] { make_protocol("folder", opt); }), Contains("1 (grey) or 3 (RGB)"));
}

TEST_CASE("data: unknown protocol names list the known ones", "[data]") {
  CHECK_THAT(message_of<vts::Error>([] { make_protocol("cifar100"); }),
             Contains("cifar100") && Contains("fashion-mnist") && Contains("nuswide_21"));
}

TEST_CASE("data: the list protocol reads your own lists, any number of classes, names from classes.txt",
          "[data][list]") {
  ListFixture fx;
  // Five classes, multi-label; test.txt and database.txt list other subsets.
  const std::vector<std::string> labels = {" 1 0 0 1 0", " 0 1 0 0 0", " 0 0 1 1 1", " 1 1 0 0 0"};
  std::string train, test, database;
  for (size_t i = 0; i < 4; ++i) train += fx.rel(i) + labels[i] + "\n";
  test = fx.rel(2) + labels[2] + "\n";
  for (size_t i : {0, 1, 3}) database += fx.rel(i) + labels[i] + "\n";
  vts_test::write_text(fx.dir / "train.txt", "\n" + train);  // a blank first line is skipped
  vts_test::write_text(fx.dir / "test.txt", test);
  vts_test::write_text(fx.dir / "database.txt", database);
  ProtocolOptions opt;
  opt.data_dir = fx.dir.path.string();
  opt.image_root = (fx.dir.path / "img").string();
  opt.image_size = 16;
  const auto split = make_protocol("list", opt);
  CHECK(split.name == "list");
  CHECK(split.num_classes == 5);
  CHECK(split.topk == -1);
  CHECK(split.class_names.empty());
  CHECK(split.train->size() == 4);
  CHECK(split.query->size() == 1);
  CHECK(split.database->size() == 3);
  CHECK(vts::data::all_labels(*split.query) == std::vector<float>{0, 0, 1, 1, 1});
  CHECK(split.database->source(2) == fx.name(3));
  CHECK(split.database->spec() == vts::data::ImageSpec{3, 16, 16});
  // Query and database through the folder protocol's evaluation transform; grey for channels 1.
  std::vector<float> a(3 * 16 * 16), b(a.size()), lab(5);
  vts::Generator g1(1), g2(1);
  split.query->get(0, a.data(), lab.data(), g1);
  vts::data::eval_transform("list", 16).apply(fx.pixels[2].data(), fx.sizes[2].first, fx.sizes[2].second, 3, b.data(),
                                              g2);
  CHECK(a == b);
  opt.channels = 1;
  CHECK(make_protocol("list", opt).database->spec() == vts::data::ImageSpec{1, 16, 16});
  opt.channels = 0;

  vts_test::write_text(fx.dir / "classes.txt", "cat\ndog\n\nbird \nfish\r\nhorse\n");
  CHECK(make_protocol("list", opt).class_names == std::vector<std::string>{"cat", "dog", "bird", "fish", "horse"});

  SECTION("classes.txt with another count, or a name twice") {
    vts_test::write_text(fx.dir / "classes.txt", "cat\ndog\n");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }),
               Contains("classes.txt") && Contains("expected 5 names") && Contains("found 2"));
    vts_test::write_text(fx.dir / "classes.txt", "a\nb\nc\nb\ne\n");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }), Contains("'b' appears twice"));
  }
  SECTION("a list with another label count names the file and line") {
    vts_test::write_text(fx.dir / "database.txt", database + fx.rel(2) + " 0 1 0\n");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }),
               Contains("database.txt:4") && Contains("5 labels") && Contains("found 4 fields"));
  }
  SECTION("an empty train.txt, a path without labels, a missing file, per-class counts") {
    vts_test::write_text(fx.dir / "train.txt", "\n\n");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }),
               Contains("train.txt") && Contains("at least one entry"));
    vts_test::write_text(fx.dir / "train.txt", fx.rel(0) + "\n");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }),
               Contains("train.txt:1") && Contains("found 1 field"));
    std::filesystem::remove(fx.dir / "train.txt");
    CHECK_THAT(message_of<vts::IoError>([&] { make_protocol("list", opt); }), Contains("train.txt"));
    opt.query_per_class = 2;
    CHECK_THAT(message_of<vts::Error>([&] { make_protocol("list", opt); }), Contains("no per-class counts"));
  }
}

TEST_CASE("data: each protocol's mAP cut-off and slice (hashing-spec §1.4, §4.3)", "[data]") {
  for (const std::string& name : vts::data::protocol_names()) {
    INFO(name);
    const vts::data::MapSettings m = vts::data::map_settings(name);
    const int64_t topk = name == "imagenet" ? 1000
                         : name == "coco" || name.rfind("nuswide", 0) == 0 ? 5000
                                                                           : -1;
    CHECK(m.topk == topk);
    // Our own protocols have no reference logs to match, so they rank the whole database.
    CHECK(m.all_but_last == (name != "fashion-mnist" && name != "folder" && name != "list"));
  }
}

TEST_CASE("data: a PoolDataset refuses a hand-filled pool with a label or pixel count out of range", "[data]") {
  auto pool = std::make_shared<vts::data::ImagePool>();
  pool->height = pool->width = 2;
  pool->channels = 1;
  pool->num_classes = 3;
  pool->pixels.assign(8, 0);
  pool->labels = {0, 2};
  CHECK(PoolDataset(pool, {0, 1}, vts::data::ImageTransform{}).size() == 2);
  pool->labels = {0, 3};  // get(1) wrote label[3] past the 3-float row
  CHECK_THROWS_WITH(PoolDataset(pool, {0, 1}, vts::data::ImageTransform{}),
                    Contains("pool image 1 has label 3") && Contains("[0, 3)"));
  pool->labels = {0, 2};
  pool->pixels.assign(7, 0);  // get(1) read past the pixels
  CHECK_THROWS_WITH(PoolDataset(pool, {0, 1}, vts::data::ImageTransform{}), Contains("8 pixel bytes") && Contains("found 7"));
}

TEST_CASE("data: a ListDataset over a ListFile built in code checks its labels and line numbers", "[data][list]") {
  vts::data::ListFile list;
  list.path = "built in code";
  list.num_classes = 2;
  list.images = {"a.png", "missing.png"};
  list.labels = {1, 0};  // one row for two images: get_label(1) read past it
  const auto t = vts::data::ImageTransform::imagenet_eval(8, 7);
  CHECK_THROWS_WITH(vts::data::ListDataset(list, "", t), Contains("2 images x 2 classes = 4 labels, found 2"));
  list.labels = {1, 0, 0, 1};
  list.lines = {3};
  CHECK_THROWS_WITH(vts::data::ListDataset(list, "", t), Contains("one line number per image (2) or none, found 1"));
  list.lines.clear();  // none: an image error names the list without a line, rather than reading past them
  const vts::data::ListDataset ds(list, "/nonexistent-vts-dir", t);
  std::vector<float> img(3 * 7 * 7), lab(2);
  vts::Generator g;
  ds.get_label(1, lab.data());
  CHECK(lab == std::vector<float>{0.0f, 1.0f});
  CHECK_THAT(message_of<vts::IoError>([&] { ds.get(1, img.data(), lab.data(), g); }),
             Contains("missing.png") && Contains("in built in code"));
}
