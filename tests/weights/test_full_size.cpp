// The Google key map at full size: an npz with every key of the ViT-B_16 imagenet21k file at its
// real shape (hashing-spec §6.3, 86M parameters plus the in21k head) loads into ViT<ViTB16>, with
// a few marked elements landing where the transposes say; the same file with one key dropped and
// one reshaped fails with a single error naming both. One successful and one failing load of
// ~400 MB; a few seconds.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "vts/io/npz.hpp"
#include "vts/io/vit_weights.hpp"
#include "weights_test_util.hpp"

using namespace vts_weights_test;
using Catch::Matchers::Contains;
namespace io = vts::io;

namespace {

io::Array zeros(std::vector<int64_t> shape) {
  io::Array a;
  a.dtype = io::DType::f32;
  a.shape = std::move(shape);
  a.bytes.assign(static_cast<size_t>(a.numel()) * 4, 0);
  return a;
}

void set(io::Array& a, int64_t flat_index, float v) {
  std::memcpy(a.bytes.data() + flat_index * 4, &v, 4);
}

std::map<std::string, io::Array> b16_keys() {
  constexpr int64_t D = 768, H = 12, Dh = 64, M = 3072, P = 16;
  std::map<std::string, io::Array> a;
  a["embedding/kernel"] = zeros({P, P, 3, D});
  a["embedding/bias"] = zeros({D});
  a["cls"] = zeros({1, 1, D});
  a["Transformer/posembed_input/pos_embedding"] = zeros({1, 197, D});
  a["Transformer/encoder_norm/scale"] = zeros({D});
  a["Transformer/encoder_norm/bias"] = zeros({D});
  a["pre_logits/kernel"] = zeros({D, D});
  a["pre_logits/bias"] = zeros({D});
  a["head/kernel"] = zeros({D, 21843});
  a["head/bias"] = zeros({21843});
  for (int i = 0; i < 12; ++i) {
    const std::string b = "Transformer/encoderblock_" + std::to_string(i) + "/";
    const std::string att = b + "MultiHeadDotProductAttention_1/";
    for (const char* ln : {"LayerNorm_0/", "LayerNorm_2/"}) {
      a[b + ln + "scale"] = zeros({D});
      a[b + ln + "bias"] = zeros({D});
    }
    for (const char* n : {"query/", "key/", "value/"}) {
      a[att + n + "kernel"] = zeros({D, H, Dh});
      a[att + n + "bias"] = zeros({H, Dh});
    }
    a[att + "out/kernel"] = zeros({H, Dh, D});
    a[att + "out/bias"] = zeros({D});
    a[b + "MlpBlock_3/Dense_0/kernel"] = zeros({D, M});
    a[b + "MlpBlock_3/Dense_0/bias"] = zeros({M});
    a[b + "MlpBlock_3/Dense_1/kernel"] = zeros({M, D});
    a[b + "MlpBlock_3/Dense_1/bias"] = zeros({D});
  }
  return a;
}

}  // namespace

TEST_CASE("weights: every ViT-B/16 key at its real shape loads and a broken copy names both faults",
          "[weights][full-size]") {
  TempDir dir;
  auto arrays = b16_keys();
  REQUIRE(arrays.size() == 10 + 12 * 16);
  // Marked elements at full-size indices (everything else is zero):
  //   embedding/kernel[r=1, q=2, c=0, d=5] → patch weight [5, c·256 + r·16 + q] = [5, 18]
  //   block 11 key/kernel[i=3, h=2, d=7]   → qkv weight row 768 + 2·64 + 7 = 903, column 3
  //   block 4 out/kernel[h=11, d=63, o=1]  → proj weight [1, 767]
  //   block 7 Dense_0/kernel[i=700, m=3000] → fc1 weight [3000, 700]
  //   block 0 value/bias[h=1, d=2]        → qkv bias 1536 + 66
  set(arrays["embedding/kernel"], ((1 * 16 + 2) * 3 + 0) * 768 + 5, 1.0f);
  set(arrays["Transformer/encoderblock_11/MultiHeadDotProductAttention_1/key/kernel"], 3 * 768 + 2 * 64 + 7, 2.0f);
  set(arrays["Transformer/encoderblock_4/MultiHeadDotProductAttention_1/out/kernel"], (11 * 64 + 63) * 768 + 1, 3.0f);
  set(arrays["Transformer/encoderblock_7/MlpBlock_3/Dense_0/kernel"], 700 * 3072 + 3000, 4.0f);
  set(arrays["Transformer/encoderblock_0/MultiHeadDotProductAttention_1/value/bias"], 64 + 2, 5.0f);
  io::write_npz(dir / "b16.npz", arrays, false);

  vts::Generator gen(1);
  vts::nn::ViT<vts::nn::ViTB16> vit(gen, 0.0);
  const io::WeightLoadReport r = io::load_pretrained(vit, dir / "b16.npz");
  CHECK(r.tensors == 4 + 12 * 12 + 2);
  CHECK(r.skipped.size() == 4);
  CHECK(!r.resized());
  CHECK(vit.patch_embed.weight.at({5, 18}) == 1.0f);
  CHECK(vit.patch_embed.weight.at({5, 17}) == 0.0f);
  CHECK(vit.blocks[11].attn.qkv.weight.at({903, 3}) == 2.0f);
  CHECK(vit.blocks[4].attn.proj.weight.at({1, 767}) == 3.0f);
  CHECK(vit.blocks[7].mlp.fc1.weight.at({3000, 700}) == 4.0f);
  CHECK(vit.blocks[0].attn.qkv.bias.at({1536 + 66}) == 5.0f);
  double sum = 0;  // and nothing else is nonzero
  for (const auto& p : vts::nn::parameters(vit))
    for (float v : p.to_vector()) sum += std::abs(v);
  CHECK(sum == 15.0);

  // Break the file in two places; the load must fail as a whole and say both. Into the same model
  // (a second ViT-B/16's random initialisation is most of this test's time under the sanitizers): a
  // marked element that changes in the broken file shows whether anything was written.
  arrays.erase("Transformer/encoderblock_5/LayerNorm_2/scale");
  arrays["Transformer/encoderblock_9/MlpBlock_3/Dense_1/kernel"] = zeros({768, 3072});  // transposed
  arrays.erase("head/kernel");  // not needed, keeps the rewrite smaller
  set(arrays["embedding/kernel"], ((1 * 16 + 2) * 3 + 0) * 768 + 5, 7.0f);
  set(arrays["Transformer/encoderblock_0/LayerNorm_0/scale"], 0, 7.0f);
  io::write_npz(dir / "b16_broken.npz", arrays, false);
  try {
    io::load_pretrained(vit, dir / "b16_broken.npz");
    FAIL("the broken file loaded");
  } catch (const vts::IoError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK_THAT(msg, Contains("2 problems; nothing was changed"));
    CHECK_THAT(msg, Contains("missing key 'Transformer/encoderblock_5/LayerNorm_2/scale' (expected (768,))"));
    CHECK_THAT(msg, Contains("key 'Transformer/encoderblock_9/MlpBlock_3/Dense_1/kernel' has shape (768, 3072), "
                             "expected (3072, 768)"));
  }
  CHECK(vit.patch_embed.weight.at({5, 18}) == 1.0f);
  CHECK(vit.blocks[0].norm1.weight.at({0}) == 0.0f);
}
