#pragma once
// ViT<Config>: the Vision Transformer backbone of the paper (jeonsworld/ViT-pytorch semantics,
// hashing-spec §6.2). A configuration is a type; the model is one template for all of them.
//
//   images [B, C, S, S] → patches [B, G², C·P·P] (row-major patch grid, each patch flattened in
//   (channel, row, column) order — the memory order of a stride-P convolution's weight, so the
//   linear map equals that convolution) → tokens [B, G², dim] → prepend the class token → add
//   position embeddings → dropout 0.1 → depth pre-LN blocks → final LayerNorm → [B, G²+1, dim].
#include <string>

#include "vts/nn/layers.hpp"
#include "vts/ops/indexing.hpp"  // concat

namespace vts::nn {

struct ViTB16 {
  static constexpr const char* name = "b16";
  static constexpr int64_t image = 224, channels = 3, patch = 16, dim = 768, depth = 12, heads = 12, mlp = 3072;
};
struct ViTB32 {
  static constexpr const char* name = "b32";
  static constexpr int64_t image = 224, channels = 3, patch = 32, dim = 768, depth = 12, heads = 12, mlp = 3072;
};
struct ViTSmall32 {
  static constexpr const char* name = "small";
  static constexpr int64_t image = 32, channels = 3, patch = 4, dim = 192, depth = 6, heads = 3, mlp = 768;
};
struct ViTTiny28 {
  static constexpr const char* name = "tiny";
  static constexpr int64_t image = 28, channels = 1, patch = 7, dim = 64, depth = 4, heads = 4, mlp = 256;
};

template <class Config, class T = float, class D = Cpu>
struct ViT {
  // A configuration of one's own is checked here, one rule per message, so that a slip reads as a
  // sentence instead of a division by zero, an array of 2^64 - 1 blocks, or (dim % heads) an
  // error at run time. The guarded expressions below keep a failed rule from adding more errors.
  static_assert(Config::image > 0 && Config::channels > 0 && Config::patch > 0,
                "ViT config: image, channels and patch must be positive");
  static_assert(Config::dim > 0 && Config::heads > 0 && Config::mlp > 0,
                "ViT config: dim, heads and mlp must be positive");
  static_assert(Config::depth >= 0, "ViT config: depth (the number of encoder blocks) must be >= 0");
  static_assert(Config::patch <= 0 || Config::image % Config::patch == 0,
                "ViT config: image size must be a multiple of the patch size");
  static_assert(Config::heads <= 0 || Config::dim % Config::heads == 0,
                "ViT config: dim must be a multiple of heads (each head takes dim / heads features)");

  using config = Config;
  using tensor_type = Tensor<T, D>;
  static constexpr int64_t grid = Config::patch > 0 ? Config::image / Config::patch : 0;
  static constexpr int64_t tokens = grid * grid + 1;
  static constexpr int64_t patch_dim = Config::channels * Config::patch * Config::patch;
  static constexpr int64_t dim = Config::dim;
  static constexpr size_t depth = Config::depth > 0 ? static_cast<size_t>(Config::depth) : 0;

  Linear<T, D> patch_embed;
  tensor_type cls_token, pos_embed;
  Repeat<depth, EncoderBlock<T, D>> blocks;
  LayerNorm<T, D> norm;
  double dropout_p = 0.1;

  ViT() = default;
  explicit ViT(Generator& gen, double dropout = 0.1)
      : patch_embed(patch_dim, dim, gen),
        cls_token(tensor_type::zeros(Shape{1, 1, dim})),
        pos_embed(tensor_type::empty(Shape{1, tokens, dim})),
        blocks([&] { return EncoderBlock<T, D>(dim, Config::heads, Config::mlp, dropout, gen); }),
        norm(dim),
        dropout_p(dropout) {
    // From-scratch initialisation as timm's ViT: small random position embeddings and class token.
    init::trunc_normal_(pos_embed, 0.0, 0.02, -2.0, 2.0, gen);
    init::normal_(cls_token, 0.0, 1e-6, gen);
    cls_token.requires_grad_();
    pos_embed.requires_grad_();
  }

  // [B, C, S, S] → [B, G², C·P·P] without touching the autograd graph of the pixels.
  static tensor_type patchify(const tensor_type& images) {
    VTS_CHECK_SHAPE(images.ndim() == 4 && images.size(1) == Config::channels && images.size(2) == Config::image &&
                        images.size(3) == Config::image,
                    "ViT<", Config::name, ">: expected images [B, ", Config::channels, ", ", Config::image, ", ",
                    Config::image, "], found ", images.shape().str());
    const int64_t B = images.size(0), C = Config::channels, P = Config::patch, G = grid;
    return images.reshape(Shape{B, C, G, P, G, P}).permute({0, 2, 4, 1, 3, 5}).reshape(Shape{B, G * G, C * P * P});
  }

  tensor_type forward(const tensor_type& images, Context& ctx) const {
    tensor_type x = patch_embed.forward(patchify(images));  // first: it checks the images' shape
    const int64_t B = images.size(0);
    x = concat<T, D>({cls_token.expand(Shape{B, 1, dim}), x}, 1) + pos_embed;
    x = dropout(x, dropout_p, ctx.training, *ctx.rng);
    x = blocks.forward(x, ctx);
    return norm.forward(x);
  }

  template <class F>
  void visit(const std::string& prefix, F&& f) {
    patch_embed.visit(join(prefix, "patch_embed.proj"), f);
    f(join(prefix, "cls_token"), cls_token);
    f(join(prefix, "pos_embed"), pos_embed);
    blocks.visit(join(prefix, "blocks"), f);
    norm.visit(join(prefix, "norm"), f);
  }
};

}  // namespace vts::nn
