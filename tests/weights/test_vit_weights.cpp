// Pretrained-weight loading (include/vts/io/vit_weights.hpp) against tests/golden/vit, written by
// tests/golden/make_vit_golden.py from an independent PyTorch model of the same architecture.
//
// Tolerances. The reference runs in float64 on weights and inputs that are exact bfloat16 values,
// so every file format describes exactly the same numbers and the only differences left are our
// arithmetic's rounding:
//   float model: scaled error (max |a − e| / max |e|) ≤ 1e-5, the project's golden bound.
//   double model: ≤ 1e-12; a wrong transpose or head order gives errors of order 1, so this
//   isolates the key map from rounding.
//   resized position embeddings: ≤ 1e-6 against scipy's float32 output (we interpolate in double
//   and round once; scipy rounds its double result to float32 too).
#include <catch2/catch.hpp>

#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "vts/hash/heads.hpp"
#include "vts/io/checkpoint.hpp"
#include "vts/io/npz.hpp"
#include "vts/io/safetensors.hpp"
#include "vts/io/vit_weights.hpp"
#include "weights_test_util.hpp"

using namespace vts_weights_test;
using Catch::Matchers::Contains;
namespace io = vts::io;
using vts::Shape;

namespace {

template <class T>
using GoldenViT = vts::nn::ViT<ViTGolden32, T>;
template <class T>
using GoldenNet = vts::hash::HashNetwork<GoldenViT<T>, vts::hash::AllTokenHead<16, T>>;

const std::string kPos = "Transformer/posembed_input/pos_embedding";

const std::map<std::string, io::Array>& expected() {
  static const auto e = io::read_npz(golden("expected.npz"));
  return e;
}
std::vector<double> expect_values(const std::string& key) { return expected().at(key).as<double>(); }

// Sets a layer's parameters from expected.npz, where they are stored under `prefix`.<name>.
template <class Layer>
void set_from_expected(Layer& layer, const std::string& prefix) {
  layer.visit(prefix, [&](const std::string& name, auto& t) {
    using Tn = std::remove_reference_t<decltype(t)>;
    const io::Array& a = expected().at(name);
    REQUIRE(a.shape == t.shape().dims());
    vts::NoGradGuard guard;
    t.copy_(Tn::from_vector(a.as<typename Tn::value_type>(), t.shape()));
  });
}

template <class T>
vts::Tensor<T> images() {
  const io::Array& a = expected().at("images");
  return vts::Tensor<T>::from_vector(a.as<T>(), Shape(a.shape));
}

// The golden npz with some keys replaced or removed, written (stored, as Google's files are) to
// `path`.
void write_modified_npz(const std::string& path, const std::map<std::string, io::Array>& replace,
                        const std::vector<std::string>& remove = {}) {
  auto arrays = io::read_npz(golden("vit_golden32.npz"));
  for (const auto& k : remove) REQUIRE(arrays.erase(k) == 1);
  for (const auto& [k, a] : replace) arrays[k] = a;
  io::write_npz(path, arrays, false);
}

io::Array float_array(const std::vector<double>& v, std::vector<int64_t> shape) {
  return io::make_array(std::vector<float>(v.begin(), v.end()), std::move(shape));
}

io::Array converted(const io::Array& a, io::DType to) {
  const std::vector<float> v = a.as<float>();
  switch (to) {
    case io::DType::f64: return io::make_array(std::vector<double>(v.begin(), v.end()), a.shape);
    case io::DType::f32: return io::make_array(v, a.shape);
    case io::DType::bf16: {
      std::vector<vts::bf16> b;
      for (float x : v) b.push_back(vts::bf16(x));
      return io::make_array(b, a.shape);
    }
    case io::DType::f16: {
      io::Array out;
      out.dtype = io::DType::f16;
      out.shape = a.shape;
      for (float x : v) {
        const uint16_t h = io::float_to_f16(x);
        out.bytes.push_back(static_cast<uint8_t>(h));
        out.bytes.push_back(static_cast<uint8_t>(h >> 8));
      }
      return out;
    }
    case io::DType::i32: {
      return io::make_array(std::vector<int32_t>(v.size(), 0), a.shape);
    }
    default: FAIL("unsupported conversion in the test"); return a;
  }
}

}  // namespace

// The sanitized build (scripts/run-sanitized-tests, VTS_WEIGHTS_FLOAT_ONLY) runs the float model
// only: the double one reads the same files through the same parsers, and its second instantiation
// of the network was a third of that build's time for this file (95 s → 62 s at -O0).
#if VTS_WEIGHTS_FLOAT_ONLY
#define VTS_GOLDEN_MODEL_TYPES float
#else
#define VTS_GOLDEN_MODEL_TYPES float, double
#endif
TEMPLATE_TEST_CASE("weights: Google npz and timm safetensors reproduce the PyTorch forward pass", "[weights][golden]",
                   VTS_GOLDEN_MODEL_TYPES) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const std::vector<double> tokens_ref = expect_values("tokens");
  const std::vector<double> u_all_ref = expect_values("u_all"), u_cls_ref = expect_values("u_cls");

  std::map<std::string, std::map<std::string, std::vector<double>>> loaded;
  for (const std::string file : {"vit_golden32.npz", "vit_golden32.safetensors"}) {
    DYNAMIC_SECTION(file) {}
    vts::Generator gen(11);
    GoldenNet<T> net(16, gen);
    const io::WeightLoadReport r = io::load_pretrained(net.backbone, golden(file));
    CHECK(r.format == (file.ends_with(".npz") ? io::WeightFormat::google_npz : io::WeightFormat::timm_safetensors));
    CHECK(r.tensors == 4 + 2 * 12 + 2);  // patch w/b, cls, pos; 12 per block; final norm w/b
    CHECK(!r.resized());
    CHECK(r.skipped.size() == (file.ends_with(".npz") ? 4u : 2u));  // head/*, pre_logits/* | head.*
    loaded[file] = snapshot(net.backbone);

    set_from_expected(net.head, "all");
    vts::nn::Context ctx{false};
    const vts::Tensor<T> x = images<T>();
    const vts::Tensor<T> tokens = net.backbone.forward(x, ctx);
    REQUIRE(tokens.shape() == Shape{2, 17, 48});
    const double e_tokens = scaled_error(as_double(tokens.to_vector()), tokens_ref);
    const double e_all = scaled_error(as_double(net.head.forward(tokens, ctx).to_vector()), u_all_ref);
    vts::hash::ClsTokenHead<T> cls(17, 48, 16, gen);
    set_from_expected(cls, "cls");
    const double e_cls = scaled_error(as_double(cls.forward(tokens, ctx).to_vector()), u_cls_ref);
    INFO(file << ": tokens " << e_tokens << ", all-token head " << e_all << ", cls head " << e_cls);
    CHECK(e_tokens <= tol);
    CHECK(e_all <= tol);
    CHECK(e_cls <= tol);
    // The whole network agrees with its parts.
    CHECK(scaled_error(as_double(net.forward(x, ctx).to_vector()), u_all_ref) <= tol);
  }
  // Both files hold the same (bfloat16-exact) numbers, so the loads must agree bit for bit.
  CHECK(loaded["vit_golden32.npz"] == loaded["vit_golden32.safetensors"]);
}

TEST_CASE("weights: position embeddings of another grid are resized as scipy.ndimage.zoom(order=1)",
          "[weights][resize]") {
  TempDir dir;
  for (int g : {6, 3, 1}) {
    DYNAMIC_SECTION("npz grid " << g << "x" << g) {
      const io::Array& src = expected().at("pos_g" + std::to_string(g));
      write_modified_npz(dir / "resized.npz", {{kPos, src}});
      vts::Generator gen(3);
      GoldenViT<float> vit(gen);
      const auto r = io::load_google_npz(vit, dir / "resized.npz");
      CHECK(r.resized());
      CHECK(r.pos_grid_from == g);
      CHECK(r.pos_grid_to == 4);
      CHECK_THAT(r.summary(), Contains("resized from a " + std::to_string(g) + "x" + std::to_string(g) + " to a 4x4"));
      const double err = scaled_error(as_double(vit.pos_embed.to_vector()), expect_values("pos_g" + std::to_string(g) + "_to4"));
      INFO("scaled error " << err);
      CHECK(err <= 1e-6);
      // The class-token row is copied, not interpolated.
      const auto pos = vit.pos_embed.to_vector();
      const auto want = src.as<float>();
      CHECK(std::vector<float>(pos.begin(), pos.begin() + 48) == std::vector<float>(want.begin(), want.begin() + 48));
    }
  }
  SECTION("timm safetensors: the same rule") {
    auto arrays = io::read_safetensors(golden("vit_golden32.safetensors"));
    arrays["pos_embed"] = expected().at("pos_g6");
    io::write_safetensors(dir / "resized.safetensors", arrays);
    vts::Generator gen(3);
    GoldenViT<float> vit(gen);
    CHECK(io::load_pretrained(vit, dir / "resized.safetensors").pos_grid_from == 6);
    CHECK(scaled_error(as_double(vit.pos_embed.to_vector()), expect_values("pos_g6_to4")) <= 1e-6);
  }
  SECTION("with resizing off, another grid is a shape error") {
    write_modified_npz(dir / "resized.npz", {{kPos, expected().at("pos_g6")}});
    vts::Generator gen(3);
    GoldenViT<float> vit(gen);
    io::WeightLoadOptions opt;
    opt.resize_pos_embed = false;
    CHECK_THROWS_WITH(io::load_google_npz(vit, dir / "resized.npz", opt),
                      Contains("has shape (1, 37, 48), expected (1, 17, 48) (resizing is off)"));
  }
  SECTION("a position count that is no square grid cannot be resized") {
    write_modified_npz(dir / "bad.npz", {{kPos, float_array(std::vector<double>(11 * 48, 0.5), {1, 11, 48})}});
    vts::Generator gen(3);
    GoldenViT<float> vit(gen);
    CHECK_THROWS_WITH(io::load_google_npz(vit, dir / "bad.npz"),
                      Contains("has shape (1, 11, 48), expected (1, 17, 48) or (1, 1 + g*g, 48) to resize"));
  }
}

// Google's kernels are [in, out] and ours [out, in]; place_transposed writes the transpose in 32 × 32
// tiles. Shapes that are not multiples of the tile, a single row or column, and an offset (the
// query/key/value kernels land at thirds of one qkv weight): every element where the plain
// definition puts it, nothing written outside.
TEST_CASE("weights: the tiled transpose puts every element where the plain one does", "[weights][transpose]") {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {1, 70}, {70, 1}, {37, 70}, {64, 32}, {33, 95}};
  for (const auto& [rows, cols] : shapes) {
    INFO(rows << " x " << cols);
    std::vector<float> src(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i + 1);
    const size_t offset = 5;
    std::vector<float> dst(src.size() + offset + 3, -1.0f);
    io::detail::place_transposed<float>(rows, cols, offset)(src, dst.data());
    bool every = true;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        if (dst[offset + static_cast<size_t>(c * rows + r)] != src[static_cast<size_t>(r * cols + c)]) every = false;
    CHECK(every);
    for (size_t i = 0; i < offset; ++i) CHECK(dst[i] == -1.0f);
    for (size_t i = offset + src.size(); i < dst.size(); ++i) CHECK(dst[i] == -1.0f);
  }
}

TEST_CASE("weights: resize_pos_embed on hand-checked values", "[weights][resize]") {
  // dim 1, grid 2 → 3: output coordinates 0, 0.5, 1 along each axis; the CLS value 9 stays.
  const std::vector<double> src{9, 1, 2, 3, 4};
  CHECK(io::resize_pos_embed(src, 2, 3, 1) == std::vector<double>{9, 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  // 3 → 1 reads coordinate 0; 1 → 2 copies the single position.
  CHECK(io::resize_pos_embed({9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 1, 1) == std::vector<double>{9, 1});
  CHECK(io::resize_pos_embed({9, 5}, 1, 2, 1) == std::vector<double>{9, 5, 5, 5, 5});
  // 28 → 14, where scipy's float coordinate of the last row overshoots 27 by one ulp and its
  // 'constant' mode returns 0 there: we read the last row.
  std::vector<double> big(1 + 28 * 28, 1.0);
  const auto out = io::resize_pos_embed(big, 28, 14, 1);
  CHECK(out.back() == 1.0);
  CHECK_THROWS_AS(io::resize_pos_embed(src, 3, 2, 1), vts::ShapeError);
}

TEST_CASE("weights: float16, bfloat16 and float64 files load and integer tensors are refused", "[weights][dtype]") {
  TempDir dir;
  const auto base = io::read_safetensors(golden("vit_golden32.safetensors"));
  vts::Generator gen(5);
  GoldenViT<float> reference(gen);
  io::load_pretrained(reference, golden("vit_golden32.safetensors"));
  const auto want = snapshot(reference);
  for (io::DType to : {io::DType::f16, io::DType::f32, io::DType::f64}) {
    DYNAMIC_SECTION(io::dtype_name(to)) {
      std::map<std::string, io::Array> arrays;
      for (const auto& [k, a] : base) arrays[k] = converted(a, to);
      io::write_safetensors(dir / "w.safetensors", arrays);
      GoldenViT<float> vit(gen);
      io::load_pretrained(vit, dir / "w.safetensors");
      auto got = snapshot(vit);
      if (to == io::DType::f16) {
        // bfloat16 values below float16's normal range lose bits; compare with the f16 rounding.
        for (auto& [name, v] : got) {
          std::vector<double> w = want.at(name);
          for (double& x : w) x = io::f16_to_float(io::float_to_f16(static_cast<float>(x)));
          CHECK(v == w);
        }
      } else {
        CHECK(got == want);
      }
    }
  }
  SECTION("int32") {
    auto arrays = base;
    arrays["norm.bias"] = converted(base.at("norm.bias"), io::DType::i32);
    io::write_safetensors(dir / "w.safetensors", arrays);
    GoldenViT<float> vit(gen);
    CHECK_THROWS_WITH(io::load_pretrained(vit, dir / "w.safetensors"),
                      Contains("key 'norm.bias' is int32, expected float32, float16, bfloat16 or float64"));
  }
}

TEST_CASE("weights: every problem is reported at once and the model is left unchanged", "[weights][errors]") {
  TempDir dir;
  vts::Generator gen(9);
  GoldenViT<float> vit(gen);
  const auto before = snapshot(vit);

  SECTION("Google npz") {
    const std::string q = "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel";
    write_modified_npz(dir / "bad.npz",
                       {{q, float_array(std::vector<double>(48 * 48, 0.1), {48, 48})},
                        {"Transformer/extra/kernel", float_array({1, 2}, {2})},
                        {"cls", converted(io::read_npz_member(golden("vit_golden32.npz"), "cls"), io::DType::i32)}},
                       {"Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias"});
    try {
      io::load_google_npz(vit, dir / "bad.npz");
      FAIL("the load should have thrown");
    } catch (const vts::IoError& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK_THAT(msg, Contains("(google npz) for ViT<golden32>: 4 problems; nothing was changed"));
      CHECK_THAT(msg, Contains("missing key 'Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias' (expected (96,))"));
      CHECK_THAT(msg, Contains("unexpected key 'Transformer/extra/kernel' (float32 (2,))"));
      CHECK_THAT(msg, Contains("key '" + q + "' has shape (48, 48), expected (48, 3, 16)"));
      CHECK_THAT(msg, Contains("key 'cls' is int32"));
    }
    CHECK(snapshot(vit) == before);
  }
  SECTION("timm safetensors, with the classifier counted as unexpected") {
    auto arrays = io::read_safetensors(golden("vit_golden32.safetensors"));
    arrays.erase("blocks.1.attn.qkv.bias");
    arrays["blocks.0.mlp.fc2.weight"] = float_array(std::vector<double>(48 * 96, 0.0), {96, 48});
    io::write_safetensors(dir / "bad.safetensors", arrays);
    io::WeightLoadOptions opt;
    opt.skip_classifier = false;
    try {
      io::load_timm_safetensors(vit, dir / "bad.safetensors", opt);
      FAIL("the load should have thrown");
    } catch (const vts::IoError& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK_THAT(msg, Contains("4 problems"));
      CHECK_THAT(msg, Contains("missing key 'blocks.1.attn.qkv.bias' (expected (144,))"));
      CHECK_THAT(msg, Contains("key 'blocks.0.mlp.fc2.weight' has shape (96, 48), expected (48, 96)"));
      CHECK_THAT(msg, Contains("unexpected key 'head.weight' (bfloat16 (10, 48))"));
      CHECK_THAT(msg, Contains("unexpected key 'head.bias'"));
    }
    CHECK(snapshot(vit) == before);
  }
  SECTION("a file for another model: ViT-B/32-sized patches") {
    write_modified_npz(dir / "b32.npz", {{"embedding/kernel", float_array(std::vector<double>(32 * 32 * 3 * 48), {32, 32, 3, 48})}});
    CHECK_THROWS_WITH(io::load_google_npz(vit, dir / "b32.npz"),
                      Contains("key 'embedding/kernel' has shape (32, 32, 3, 48), expected (8, 8, 3, 48)"));
    CHECK(snapshot(vit) == before);
  }
}

TEST_CASE("weights: NaN and Inf values are refused, each tensor named with its count", "[weights][errors]") {
  TempDir dir;
  vts::Generator gen(9);
  GoldenViT<float> vit(gen);
  const auto before = snapshot(vit);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> scale(48, 1.0);
  scale[3] = nan;
  scale[40] = -inf;
  write_modified_npz(dir / "nan.npz", {{"Transformer/encoder_norm/scale", float_array(scale, {48})}});
  CHECK_THROWS_WITH(io::load_pretrained(vit, dir / "nan.npz"),
                    Contains("1 problem") &&
                        Contains("tensor 'Transformer/encoder_norm/scale' holds 2 non-finite values (NaN or Inf) "
                                 "among 48"));
  CHECK(snapshot(vit) == before);

  auto arrays = io::read_safetensors(golden("vit_golden32.safetensors"));
  std::vector<double> cls(48, 0.5);
  cls[0] = inf;
  arrays["cls_token"] = float_array(cls, {1, 1, 48});
  // Position embeddings of another grid (3x3) are resized: their values are checked before.
  std::vector<double> pos((1 + 9) * 48, 0.25);
  pos[100] = nan;
  arrays["pos_embed"] = float_array(pos, {1, 10, 48});
  io::write_safetensors(dir / "nan.safetensors", arrays);
  try {
    io::load_pretrained(vit, dir / "nan.safetensors");
    FAIL("the load should have thrown");
  } catch (const vts::IoError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK_THAT(msg, Contains("2 problems"));
    CHECK_THAT(msg, Contains("tensor 'cls_token' holds 1 non-finite value (NaN or Inf) among 48"));
    CHECK_THAT(msg, Contains("tensor 'pos_embed' holds 1 non-finite value (NaN or Inf) among 480"));
  }
  CHECK(snapshot(vit) == before);
}

TEST_CASE("weights: truncated and corrupted files are errors, not crashes", "[weights][errors]") {
  TempDir dir;
  vts::Generator gen(9);
  GoldenViT<float> vit(gen);
  const auto before = snapshot(vit);

  SECTION("npz cut in half") {
    auto bytes = read_bytes(golden("vit_golden32.npz"));
    bytes.resize(bytes.size() / 2);
    write_bytes(dir / "cut.npz", bytes);
    CHECK_THROWS_WITH(io::load_pretrained(vit, dir / "cut.npz"), Contains("cannot read the file"));
  }
  SECTION("a stored npz member with flipped data bits fails its CRC; other problems still listed") {
    write_modified_npz(dir / "stored.npz", {}, {"embedding/bias"});
    auto bytes = read_bytes(dir / "stored.npz");
    const std::string s(bytes.begin(), bytes.end());
    const size_t name = s.find("Transformer/encoder_norm/scale.npy");
    REQUIRE(name != std::string::npos);
    const size_t magic = s.find("\x93NUMPY", name);
    REQUIRE(magic != std::string::npos);
    bytes[magic + 128 + 8] ^= 0x40;  // inside the float data (the npy header is 128 bytes here)
    write_bytes(dir / "stored.npz", bytes);
    try {
      io::load_google_npz(vit, dir / "stored.npz");
      FAIL("the load should have thrown");
    } catch (const vts::IoError& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK_THAT(msg, Contains("2 problems"));
      CHECK_THAT(msg, Contains("key 'Transformer/encoder_norm/scale': "));
      CHECK_THAT(msg, Contains("CRC"));
      CHECK_THAT(msg, Contains("missing key 'embedding/bias'"));
    }
  }
  SECTION("safetensors cut short") {
    auto bytes = read_bytes(golden("vit_golden32.safetensors"));
    bytes.resize(bytes.size() - 100);
    write_bytes(dir / "cut.safetensors", bytes);
    CHECK_THROWS_WITH(io::load_pretrained(vit, dir / "cut.safetensors"), Contains("cannot read the file"));
  }
  SECTION("neither format") {
    write_bytes(dir / "junk.bin", {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0});
    CHECK_THROWS_WITH(io::load_pretrained(vit, dir / "junk.bin"), Contains("neither an npz (zip) nor a safetensors"));
    write_bytes(dir / "empty.bin", {});
    CHECK_THROWS_AS(io::detect_format(dir / "empty.bin"), vts::IoError);
    CHECK_THROWS_AS(io::detect_format(dir / "missing.bin"), vts::IoError);
  }
  CHECK(snapshot(vit) == before);
}

TEST_CASE("weights: format detection reads content, not the file name", "[weights][detect]") {
  TempDir dir;
  std::filesystem::copy_file(golden("vit_golden32.npz"), dir / "weights.safetensors");
  std::filesystem::copy_file(golden("vit_golden32.safetensors"), dir / "weights.npz");
  CHECK(io::detect_format(dir / "weights.safetensors") == io::WeightFormat::google_npz);
  CHECK(io::detect_format(dir / "weights.npz") == io::WeightFormat::timm_safetensors);
  vts::Generator gen(1);
  GoldenViT<float> a(gen), b(gen);
  io::load_pretrained(a, dir / "weights.safetensors");
  io::load_pretrained(b, dir / "weights.npz");
  CHECK(snapshot(a) == snapshot(b));
}

TEST_CASE("weights: the classifier keys are skipped, or handed back, or refused", "[weights][classifier]") {
  vts::Generator gen(2);
  GoldenViT<float> vit(gen);
  io::WeightLoadOptions keep;
  keep.keep_skipped = true;
  const auto r = io::load_google_npz(vit, golden("vit_golden32.npz"), keep);
  REQUIRE(r.skipped_arrays.count("head/kernel"));
  CHECK(r.skipped_arrays.at("head/kernel").shape == std::vector<int64_t>{48, 10});
  CHECK(r.skipped_arrays.count("pre_logits/bias"));
  io::WeightLoadOptions strict;
  strict.skip_classifier = false;
  CHECK_THROWS_WITH(io::load_google_npz(vit, golden("vit_golden32.npz"), strict),
                    Contains("unexpected key 'pre_logits/kernel'") && Contains("4 problems"));
}

TEST_CASE("weights: a vts checkpoint's backbone loads as pretrained weights", "[weights][checkpoint]") {
  TempDir dir;
  vts::Generator gen(4);
  GoldenNet<float> trained(16, gen);
  io::load_pretrained(trained.backbone, golden("vit_golden32.npz"));
  io::CheckpointWriter w;
  w.add_layer("model", trained);
  w.metadata() = {{"config", "golden32"}};
  w.write(dir / "best.safetensors");

  GoldenViT<float> fresh(gen);
  REQUIRE(snapshot(fresh) != snapshot(trained.backbone));
  const auto r = io::load_pretrained(fresh, dir / "best.safetensors");
  CHECK(snapshot(fresh) == snapshot(trained.backbone));
  CHECK(r.skipped.size() == 4);  // model.hash_head.fc1/fc2 weight and bias
}
