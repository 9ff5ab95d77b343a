#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io_test_util.hpp"
#include "vts/io/safetensors.hpp"

using namespace vts::io;
using namespace vts_io_test;
using Catch::Matchers::Contains;

namespace {

// An image with the given header text (padded to 8 bytes unless told not to) and data section.
std::vector<uint8_t> image(const std::string& header, const std::vector<uint8_t>& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i)));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string safetensors_error(const std::vector<uint8_t>& img) {
  return io_error([&] { parse_safetensors(img.data(), img.size(), "st-image"); });
}

float bf16_value(float f) { return static_cast<float>(vts::bf16(f)); }

}  // namespace

TEST_CASE("io: safetensors fixture: every tensor and the metadata", "[io][safetensors]") {
  const Safetensors st = Safetensors::open(golden("basic.safetensors"));
  CHECK(st.size() == 11);
  CHECK(st.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "vts fixture"}});
  CHECK(st.data_offset() % 8 == 0);

  const auto& w = st.at("weight");
  CHECK(w.dtype == DType::f32);
  CHECK(w.shape == std::vector<int64_t>{2, 3});
  CHECK(w.begin == 0);
  CHECK(w.end == 24);
  CHECK(w.data.size() == 24);
  CHECK(w.to_array().as<float>() == std::vector<float>{-0.5f, -0.25f, 0.f, 0.25f, 0.5f, 0.75f});

  CHECK(st.array("ids").as<int64_t>() == std::vector<int64_t>{-5, 0, 5, int64_t(1) << 50});
  CHECK(st.array("flags").as<bool>() == std::vector<bool>{true, false, false, true});
  CHECK(st.at("flags").dtype == DType::b1);
  const auto half = st.array("half").as<float>();
  CHECK(half == std::vector<float>{1.5f, 0.f, 1024.f});
  CHECK(std::signbit(half[1]));
  CHECK(st.at("brain").dtype == DType::bf16);
  CHECK(st.array("brain").as<float>() == std::vector<float>{1.0f, -3.5f, bf16_value(0.1f)});
  CHECK(st.array("bytes").as<int>() == std::vector<int>{0, 200, 255});
  CHECK(st.array("small").as<int>() == std::vector<int>{-7, 7});
  CHECK(st.array("shorts").as<int>() == std::vector<int>{-1000, 1000});
  CHECK(st.at("ints").shape == std::vector<int64_t>{1, 2});
  CHECK(st.array("ints").as<int>() == std::vector<int>{-70000, 70000});
  CHECK(st.at("scalar").shape.empty());
  CHECK(st.array("scalar").as<double>() == std::vector<double>{std::sqrt(2.0)});
  CHECK(st.at("nothing").shape == std::vector<int64_t>{0, 2});
  CHECK(st.at("nothing").data.empty());

  // The views point into the mapping at the file offsets the header gives.
  const auto raw = read_bytes(golden("basic.safetensors"));
  const auto& ids = st.at("ids");
  CHECK(std::memcmp(ids.data.data(), raw.data() + st.data_offset() + ids.begin, ids.data.size()) == 0);

  const auto all = read_safetensors(golden("basic.safetensors"));
  CHECK(all.size() == 11);
  CHECK(all.at("weight").bytes == w.to_array().bytes);

  const Safetensors plain = Safetensors::open(golden("no_metadata.safetensors"));
  CHECK(plain.metadata().empty());
  CHECK(plain.array("x").as<float>() == std::vector<float>{1.f, 2.f});

  CHECK_THAT(io_error([&] { st.at("missing"); }), Contains("basic.safetensors") && Contains("'missing'"));
}

TEST_CASE("io: tensor views keep the mapping alive after the Safetensors object is gone", "[io][safetensors]") {
  SafetensorsTensor t;
  {
    const Safetensors st = Safetensors::open(golden("basic.safetensors"));
    const Safetensors copy = st;
    t = copy.at("ids");
  }
  CHECK(t.owner != nullptr);
  CHECK(t.to_array().as<int64_t>() == std::vector<int64_t>{-5, 0, 5, int64_t(1) << 50});
}

TEST_CASE("io: safetensors round trip for every dtype", "[io][safetensors]") {
  TempDir dir;
  std::map<std::string, Array> arrays;
  uint64_t seed = 300;
  for (DType dt : all_dtypes()) {
    arrays[std::string("t.") + dtype_name(dt)] = random_array(dt, {2, 3}, seed++);
    arrays[std::string("s.") + dtype_name(dt)] = random_array(dt, {}, seed++);
  }
  arrays["empty"] = random_array(DType::f32, {4, 0}, seed++);
  const std::map<std::string, std::string> meta{{"format", "vts"}, {"bits", "64"}, {"unicode", "caf\xc3\xa9"}};
  const std::string p = dir / "rt.safetensors";
  write_safetensors(p, arrays, meta);
  const auto img = serialize_safetensors(arrays, meta);
  CHECK(read_bytes(p) == img);

  for (const Safetensors& st : {Safetensors::open(p), parse_safetensors(img.data(), img.size(), "memory")}) {
    CHECK(st.metadata() == meta);
    CHECK(st.data_offset() % 8 == 0);
    REQUIRE(st.size() == arrays.size());
    for (const auto& [name, a] : arrays) {
      INFO(name);
      const auto& t = st.at(name);
      CHECK(t.dtype == a.dtype);
      CHECK(t.shape == a.shape);
      CHECK(t.to_array().bytes == a.bytes);
      // The writer orders data so every tensor is aligned to its element size.
      CHECK((st.data_offset() + t.begin) % dtype_size(t.dtype) == 0);
    }
  }

  write_safetensors(dir / "empty.safetensors", {});
  CHECK(Safetensors::open(dir / "empty.safetensors").size() == 0);

  CHECK_THAT(io_error([&] { write_safetensors(dir / "x.safetensors", {{"__metadata__", make_array<float>({1.f}, {1})}}); }),
             Contains("reserved"));
  CHECK_THAT(io_error([&] { write_safetensors(dir / "y.safetensors", {{"bad\xff", make_array<float>({1.f}, {1})}}); }),
             Contains("UTF-8"));
  CHECK_THAT(io_error([&] { write_safetensors(dir / "z.safetensors", {{"short", Array{DType::f32, {2}, {0, 0, 0, 0}}}}); }),
             Contains("z.safetensors") && Contains("'short'") && Contains("needs 8 bytes"));
  for (const auto& e : dir.entries()) CHECK(e.find(".tmp") == std::string::npos);
}

TEST_CASE("io: safetensors written from sources, in pieces, match the arrays' file, and a wrong byte count is refused",
          "[io][safetensors]") {
  TempDir dir;
  std::map<std::string, Array> arrays;
  uint64_t seed = 900;
  for (DType dt : all_dtypes()) arrays[std::string("t.") + dtype_name(dt)] = random_array(dt, {3, 5}, seed++);
  arrays["empty"] = random_array(DType::f32, {0, 2}, seed++);
  // Each source hands its bytes over in pieces of 7 (the writer may not assume one piece a tensor).
  auto sources_of = [](const std::map<std::string, Array>& from) {
    std::map<std::string, SafetensorsSource> out;
    for (const auto& [name, a] : from)
      out[name] = {a.dtype, a.shape, [&bytes = a.bytes](const SafetensorsSource::Sink& sink) {
                     for (size_t at = 0; at < bytes.size(); at += 7)
                       sink(bytes.data() + at, std::min<size_t>(7, bytes.size() - at));
                   }};
    return out;
  };
  const std::map<std::string, std::string> meta{{"k", "v"}};
  const std::string p = dir / "src.safetensors";
  write_safetensors_streamed(p, sources_of(arrays), meta);
  CHECK(read_bytes(p) == serialize_safetensors(arrays, meta));

  // A source that gives fewer or more bytes than its dtype and shape announce: an IoError naming
  // the tensor, and the file written before stays as it was.
  const std::vector<uint8_t> before = read_bytes(p);
  std::map<std::string, SafetensorsSource> wrong = sources_of(arrays);
  const std::vector<uint8_t> five(5, 1);
  wrong["t.float32"].write = [&](const SafetensorsSource::Sink& sink) { sink(five.data(), five.size()); };
  CHECK_THAT(io_error([&] { write_safetensors_streamed(p, wrong, meta); }),
             Contains("src.safetensors") && Contains("'t.float32'") && Contains("gave 5 of the 60 bytes"));
  const std::vector<uint8_t> many(61, 1);
  wrong["t.float32"].write = [&](const SafetensorsSource::Sink& sink) { sink(many.data(), many.size()); };
  CHECK_THAT(io_error([&] { write_safetensors_streamed(p, wrong, meta); }),
             Contains("'t.float32'") && Contains("more than the 60 bytes of float32 (3, 5)"));
  wrong["t.float32"].write = nullptr;
  CHECK_THAT(io_error([&] { write_safetensors_streamed(p, wrong, meta); }),
             Contains("'t.float32'") && Contains("no function"));
  wrong["t.float32"] = {DType::f32, {-1, 2}, [](const SafetensorsSource::Sink&) {}};
  CHECK_THAT(io_error([&] { write_safetensors_streamed(p, wrong, meta); }), Contains("invalid shape"));
  CHECK(read_bytes(p) == before);
  for (const auto& e : dir.entries()) CHECK(e.find(".tmp") == std::string::npos);
}

TEST_CASE("io: malformed safetensors raise IoError that says what is wrong", "[io][safetensors]") {
  const std::vector<uint8_t> d8(8, 0);
  const std::string one = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE_NOTHROW(parse_safetensors(image(one, d8).data(), image(one, d8).size(), "ok"));

  CHECK_THAT(safetensors_error({1, 2, 3}), Contains("st-image") && Contains("truncated"));
  {
    auto img = image(one, d8);
    img[5] = 1;  // header length ~ 2^40
    CHECK_THAT(safetensors_error(img), Contains("header length") && Contains("exceeds"));
  }
  {
    auto img = image(one, d8);
    img.resize(img.size() - 12);  // cut into the header
    CHECK_THAT(safetensors_error(img), Contains("exceeds"));
  }
  CHECK_THAT(safetensors_error(image(" {}", {})), Contains("does not start with '{'"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32",)", d8)), Contains("not valid JSON"));
  CHECK_THAT(safetensors_error(image(R"({"a":1} x)", d8)), Contains("not valid JSON"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", d8)),
             Contains("'a'") && Contains("F8_E4M3") && Contains("not supported"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", d8)),
             Contains("outside the data section"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8)),
             Contains("outside"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8)),
             Contains("needs 12 bytes") && Contains("hold 8"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", d8)),
             Contains("'b'") && Contains("overlap"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8)),
             Contains("gap of 4 bytes"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8)),
             Contains("4 bytes belong to no tensor"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8)),
             Contains("non-negative integer"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", d8)),
             Contains("non-negative integer"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", d8)),
             Contains("too large"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2]}})", d8)), Contains("data_offsets"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8)), Contains("pair"));
  CHECK_THAT(safetensors_error(image(R"({"a":[1]})", d8)), Contains("not a JSON object"));
  CHECK_THAT(safetensors_error(image(R"([1,2])", d8)), Contains("does not start with '{'"));
  CHECK_THAT(safetensors_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d8)),
             Contains("more than once"));
  CHECK_THAT(safetensors_error(image(R"({"__metadata__":{"k":1}})", {})), Contains("__metadata__") && Contains("not a string"));
  CHECK_THAT(safetensors_error(image(R"({"__metadata__":{"k":{"deep":[[[1]]]}}})", {})), Contains("nested deeper"));
  CHECK_THAT(safetensors_error(image(std::string(100000, '[') , {})), Contains("does not start with '{'"));
  CHECK_THAT(safetensors_error(image("{\"a\":" + std::string(100000, '['), {})), Contains("nested deeper"));
  // Tolerated: null metadata, unknown extra fields in an entry, zero-sized tensors sharing an offset.
  CHECK_NOTHROW(parse_safetensors(image(R"({"__metadata__":null})", {}).data(), image(R"({"__metadata__":null})", {}).size(), "m"));
  const auto extra = image(R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"e":{"dtype":"BOOL","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", d8);
  CHECK(parse_safetensors(extra.data(), extra.size(), "extra").size() == 3);
}

TEST_CASE("io: safetensors file errors name the file", "[io][safetensors]") {
  TempDir dir;
  auto raw = read_bytes(golden("basic.safetensors"));
  raw.resize(raw.size() - 5);
  const std::string p = dir / "cut.safetensors";
  write_bytes(p, raw);
  CHECK_THAT(io_error([&] { Safetensors::open(p); }), Contains(p));
  write_bytes(p, {});
  CHECK_THAT(io_error([&] { Safetensors::open(p); }), Contains(p) && Contains("truncated"));
  CHECK_THAT(io_error([&] { Safetensors::open(dir / "absent.safetensors"); }), Contains("absent.safetensors"));
  CHECK_THAT(io_error([&] { read_safetensors(golden("stored.npz")); }), Contains("stored.npz"));
}
