// Reading single images back by source ("file#record" or an image path), folders of images as
// unlabelled lists, grey list datasets, and the protocols' evaluation transforms — what `vts
// encode` and `vts search` stand on.
#include <stb_image_write.h>

#include <catch2/catch.hpp>

#include "test_util.hpp"
#include "vts/data/list_dataset.hpp"
#include "vts/data/protocol.hpp"
#include "vts/data/source.hpp"

using vts::data::parse_source;
using vts::data::SourceImageReader;

TEST_CASE("data: sources split into file and record only when the record is a number", "[data][source]") {
  vts_test::TempDir dir;
  CHECK(parse_source("a/b.gz#12").file == "a/b.gz");
  CHECK(parse_source("a/b.gz#12").record == 12);
  CHECK(parse_source("a/b.png").record == -1);
  CHECK(parse_source("a/b#x.png").record == -1);
  CHECK(parse_source("a/b#").record == -1);
  CHECK(parse_source("a/b#-3").record == -1);
  // An existing file whose name ends in #digits is a file, not a record.
  vts_test::write_text(dir / "odd#7", "x");
  CHECK(parse_source(dir / "odd#7").record == -1);
}

TEST_CASE("data: IDX records, CIFAR records and image files read back by source", "[data][source]") {
  vts_test::TempDir dir;
  SourceImageReader reader;

  // Three 2x3 IDX images; image r holds 10r + p.
  std::vector<uint8_t> px;
  for (int r = 0; r < 3; ++r)
    for (int p = 0; p < 6; ++p) px.push_back(uint8_t(10 * r + p));
  vts_test::write_gz(dir / "images-idx3-ubyte.gz", vts_test::idx_bytes({3, 2, 3}, px));
  const auto grey = reader.read(dir / "images-idx3-ubyte.gz#2", 1);
  CHECK(grey.height == 2);
  CHECK(grey.width == 3);
  CHECK(grey.pixels == std::vector<uint8_t>{20, 21, 22, 23, 24, 25});
  const auto rgb = reader.read(dir / "images-idx3-ubyte.gz#1", 3);
  CHECK(rgb.channels == 3);
  CHECK(std::vector<uint8_t>(rgb.pixels.begin(), rgb.pixels.begin() + 6) == std::vector<uint8_t>{10, 10, 10, 11, 11, 11});
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { reader.read(dir / "images-idx3-ubyte.gz#3", 1); }),
             Catch::Contains("holds 3 images"));
  vts_test::write_gz(dir / "labels-idx1-ubyte.gz", vts_test::idx_bytes({3}, {1, 2, 3}));
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { reader.read(dir / "labels-idx1-ubyte.gz#0", 1); }),
             Catch::Contains("expected an IDX file of images"));

  // Two CIFAR records (label, then planar R, G, B); record 1's channel c pixel p = (c + p) & 255.
  std::vector<uint8_t> bin;
  for (int r = 0; r < 2; ++r) {
    bin.push_back(uint8_t(r));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) bin.push_back(uint8_t(r * (c + p)));
  }
  vts_test::write_plain(dir / "data_batch_1.bin", bin);
  const auto cifar = reader.read(dir / "data_batch_1.bin#1", 3);
  REQUIRE(cifar.pixels.size() == 32 * 32 * 3);
  CHECK(cifar.pixels[0] == 0);
  CHECK(cifar.pixels[1] == 1);    // pixel 0, green
  CHECK(cifar.pixels[3 * 5 + 2] == 7);  // pixel 5, blue
  CHECK(reader.read(dir / "data_batch_1.bin#1", 1).pixels[5] ==
        uint8_t((5 * 19595 + 6 * 38470 + 7 * 7471 + 0x8000) >> 16));  // PIL's luma
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { reader.read(dir / "data_batch_1.bin#2", 3); }),
             Catch::Contains("too short"));

  // A plain image file.
  const std::vector<uint8_t> g = {0, 50, 100, 150, 200, 250};
  REQUIRE(stbi_write_png((dir / "g.png").c_str(), 3, 2, 1, g.data(), 3) != 0);
  CHECK(reader.read(dir / "g.png", 1).pixels == g);
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { reader.read(dir / "missing.png", 1); }),
             Catch::Contains("missing.png"));
}

TEST_CASE("data: a folder of images is an unlabelled list, sorted, subfolders included", "[data][source]") {
  vts_test::TempDir dir;
  std::filesystem::create_directories(dir.path / "sub");
  const std::vector<uint8_t> g(28 * 28, 128);
  REQUIRE(stbi_write_png((dir / "b.png").c_str(), 28, 28, 1, g.data(), 28) != 0);
  REQUIRE(stbi_write_png((dir / "sub/a.PNG").c_str(), 28, 28, 1, g.data(), 28) != 0);
  vts_test::write_text(dir / "notes.txt", "not an image");
  const auto list = vts::data::list_image_folder(dir.path.string());
  CHECK(list.images == std::vector<std::string>{"b.png", "sub/a.PNG"});
  CHECK(list.num_classes == 0);

  const auto t = vts::data::eval_transform("fashion-mnist", 20);  // grey, resized to 20x20
  vts::data::ListDataset ds(list, dir.path.string(), t, 1);
  CHECK(ds.spec() == vts::data::ImageSpec{1, 20, 20});
  std::vector<float> img(20 * 20);
  vts::Generator gen(0);
  ds.get(1, img.data(), nullptr, gen);
  CHECK(img[0] == Approx((128.0f / 255.0f - 0.2860f) / 0.3530f));
  CHECK(ds.source(0) == (dir.path / "b.png").string());

  vts_test::TempDir empty;
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { vts::data::list_image_folder(empty.path.string()); }),
             Catch::Contains("found none"));
  CHECK_THAT(vts_test::message_of<vts::IoError>([&] { vts::data::list_image_folder(dir / "notes.txt"); }),
             Catch::Contains("expected a folder, found a file"));
}

TEST_CASE("data: each protocol's evaluation transform is the one its query split uses", "[data][source]") {
  using vts::data::ImageTransform;
  const auto f = vts::data::eval_transform("fashion-mnist");
  CHECK(f.resize == ImageTransform::Resize::none);
  CHECK(f.crop == ImageTransform::Crop::none);
  CHECK(f.mean == std::vector<float>{vts::data::kFashionMnistMean});
  CHECK(vts::data::eval_transform("fashion-mnist", 56).resize_height == 56);
  const auto c = vts::data::eval_transform("cifar10-1", 32);
  CHECK(c.resize == ImageTransform::Resize::none);
  CHECK(c.mean == ImageTransform::imagenet_mean());
  CHECK(vts::data::eval_transform("cifar10").resize_height == 224);
  const auto l = vts::data::eval_transform("coco");
  CHECK(l.resize_shorter == 256);
  CHECK(l.crop == ImageTransform::Crop::center);
  CHECK(l.crop_height == 224);
  CHECK_THAT(vts_test::message_of<vts::Error>([] { vts::data::eval_transform("mnist"); }),
             Catch::Contains("unknown protocol 'mnist'"));
}
