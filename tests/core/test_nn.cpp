// Models composed from the layers the way a researcher builds one: a ViT of one's own
// configuration and a hash network on top. What a slip in the configuration or the input gives.
// (Configurations that cannot work at all are compile errors: vit_config_errors.cpp.)
#include "test_util.hpp"

#include "vts/hash/heads.hpp"

using namespace vts;
using namespace vts_test;
using Catch::Matchers::Contains;

namespace {
struct Mini {
  static constexpr const char* name = "mini";
  static constexpr int64_t image = 8, channels = 1, patch = 4, dim = 8, depth = 1, heads = 2, mlp = 16;
};
}  // namespace

TEST_CASE("nn: ViT names itself and the images it expects for any wrong input", "[nn][vit]") {
  Generator gen(1);
  nn::ViT<Mini> vit(gen);
  nn::Context ctx;
  // A 0-d input used to fail on images.size(0) first, with a message about axis 0 of shape [].
  for (const Tf& x : {Tf::scalar(1.0f), Tf::ones(Shape{64}), Tf::ones(Shape{1, 8, 8}), Tf::ones(Shape{2, 1, 12, 12}),
                      Tf::ones(Shape{2, 3, 8, 8})}) {
    INFO("input " << x.shape().str());
    CHECK_THROWS_AS(vit.forward(x, ctx), ShapeError);
    CHECK_THROWS_WITH(vit.forward(x, ctx), Contains("ViT<mini>: expected images [B, 1, 8, 8], found " + x.shape().str()));
  }
  CHECK(vit.forward(Tf::ones(Shape{2, 1, 8, 8}), ctx).shape() == Shape{2, 5, 8});
}

TEST_CASE("hash: a hash network of zero or negative bits is refused by name", "[nn][hash]") {
  Generator gen(1);
  nn::Context ctx;
  using AllToken = hash::HashNetwork<nn::ViT<Mini>, hash::AllTokenHead<4>>;
  using ClsToken = hash::HashNetwork<nn::ViT<Mini>, hash::ClsTokenHead<>>;
  // 0 bits used to build a network whose codes were [B, 0], silently.
  CHECK_THROWS_WITH(AllToken(0, gen), Contains("code length (bits) must be positive, got 0"));
  CHECK_THROWS_WITH(ClsToken(0, gen), Contains("code length (bits) must be positive, got 0"));
  CHECK_THROWS_WITH(AllToken(-8, gen), Contains("code length (bits) must be positive, got -8"));
  CHECK(AllToken(3, gen).forward(Tf::ones(Shape{2, 1, 8, 8}), ctx).shape() == Shape{2, 3});
}

namespace {
// A block without a default constructor that remembers its place in the order of construction.
struct Counted {
  using tensor_type = Tf;
  explicit Counted(int made) : index(made) {}
  int index;
  Tf forward(const Tf& x, nn::Context&) const { return x; }
  template <class F>
  void visit(const std::string&, F&&) {}
};
}  // namespace

TEST_CASE("nn: Repeat is copied like any layer, and Repeat<0> passes its input through", "[nn][repeat]") {
  Generator gen(1);
  nn::Repeat<2, nn::Mlp<>> blocks([&] { return nn::Mlp<>(4, 8, 0.0, gen); });
  // Direct-initialisation from a non-const Repeat used to pick the block-maker constructor (Make =
  // Repeat&) over the copy constructor and did not compile: "no match for call to (Repeat) ()".
  nn::Repeat<2, nn::Mlp<>> copy(blocks);
  CHECK(copy[1].fc2.weight.impl() == blocks[1].fc2.weight.impl());  // layers are handles to their tensors
  CHECK(nn::parameters(copy).size() == 8);

  // Built in place: a block type without a default constructor works, and the blocks are made in
  // order (here: each remembers how many were made before it).
  int made = 0;
  nn::Repeat<3, Counted> counted([&] { return Counted(made++); });
  CHECK(counted[0].index == 0);
  CHECK(counted[2].index == 2);

  nn::Repeat<0, nn::EncoderBlock<>> none([&] { return nn::EncoderBlock<>(4, 2, 8, 0.0, gen); });
  nn::Context ctx;
  const Tf x = to_float(uniform({2, 3, 4}, 5));
  CHECK(none.forward(x, ctx).to_vector() == x.to_vector());
  CHECK(nn::parameters(none).empty());
}

// ---- gradients through the layers -------------------------------------------------------------------
// Each layer's forward is a composition of ops that test_grad_*.cpp check one by one; these check
// the compositions as a user calls them, in double, with respect to the input and every parameter
// (gradcheck perturbs the parameters in place, and the layer holds handles to the same tensors).
// Parameters are redrawn uniformly first, so no LayerNorm weight is the identity's 1 and no bias 0.
// Dropout runs in training mode with a fresh generator of one seed in each evaluation: one mask.
namespace {
template <class Layer>
std::vector<Td> randomized_parameters(Layer& layer, uint64_t seed) {
  std::vector<Td> params = nn::parameters(layer);
  for (Td& p : params) p.detach().copy_(uniform(p.shape(), seed++, -0.8, 0.8));
  return params;
}
// The input first, then the layer's parameters in visit order.
template <class Layer>
std::vector<Td> input_and_parameters(const Td& x, Layer& layer, uint64_t seed) {
  std::vector<Td> in{x};
  for (const Td& p : randomized_parameters(layer, seed)) in.push_back(p);
  return in;
}
}  // namespace

TEST_CASE("grad: nn layers with respect to their input and parameters", "[grad][nn]") {
  Generator gen(3);
  SECTION("Linear, with and without bias") {
    nn::Linear<double> lin(4, 3, gen), nobias(4, 3, gen, false);
    check_grad([&](auto& in) { return lin.forward(in[0]); }, input_and_parameters(uniform({2, 5, 4}, 1), lin, 10));
    check_grad([&](auto& in) { return nobias.forward(in[0]); }, input_and_parameters(uniform({5, 4}, 2), nobias, 20));
  }
  SECTION("LayerNorm: forward and forward_after_add (both outputs)") {
    nn::LayerNorm<double> norm(5);
    check_grad([&](auto& in) { return norm.forward(in[0]); }, input_and_parameters(uniform({2, 3, 5}, 3, -2, 2), norm, 30));
    auto in = input_and_parameters(uniform({3, 5}, 4, -2, 2), norm, 40);
    in.push_back(uniform({3, 5}, 5, -2, 2));  // the residual
    check_grad([&](auto& a) {
      const auto r = norm.forward_after_add(a[0], a[3]);
      return add(mul(r.normed, r.normed), mul(r.sum, 0.5));
    }, in);
  }
  SECTION("Mlp: forward and forward_add, in training (dropout) and in evaluation") {
    nn::Mlp<double> mlp(4, 6, 0.25, gen);
    for (const bool training : {true, false}) {
      INFO("training " << training);
      check_grad([&](auto& in) {
        Generator drops(7);
        nn::Context ctx{training, &drops};
        return mlp.forward(in[0], ctx);
      }, input_and_parameters(uniform({2, 3, 4}, 6, -2, 2), mlp, 60));
      auto in = input_and_parameters(uniform({3, 4}, 7, -2, 2), mlp, 70);
      in.push_back(uniform({3, 4}, 8));  // the residual
      check_grad([&](auto& a) {
        Generator drops(9);
        nn::Context ctx{training, &drops};
        return mlp.forward_add(a[5], a[0], ctx);
      }, in);
    }
  }
  SECTION("SelfAttention") {
    nn::SelfAttention<double> attn(6, 2, gen);
    check_grad([&](auto& in) { return attn.forward(in[0]); }, input_and_parameters(uniform({2, 4, 6}, 9, -2, 2), attn, 90));
  }
  SECTION("EncoderBlock, and two of them in a Repeat") {
    nn::EncoderBlock<double> block(4, 2, 8, 0.2, gen);
    check_grad([&](auto& in) {
      Generator drops(11);
      nn::Context ctx{true, &drops};
      return block.forward(in[0], ctx);
    }, input_and_parameters(uniform({2, 3, 4}, 10, -2, 2), block, 100));
    nn::Repeat<2, nn::EncoderBlock<double>> blocks([&] { return nn::EncoderBlock<double>(4, 2, 8, 0.0, gen); });
    nn::Context eval;
    check_grad([&](auto& in) { return blocks.forward(in[0], eval); },
               input_and_parameters(uniform({1, 3, 4}, 12, -2, 2), blocks, 120));
  }
}

TEST_CASE("grad: ViT and the hash heads with respect to images and every parameter", "[grad][nn][vit]") {
  Generator gen(4);
  const Td images = uniform({2, 1, 8, 8}, 13);
  SECTION("ViT<Mini> in training: patchify, class token, position embeddings, dropout, block, norm") {
    nn::ViT<Mini, double> vit(gen, 0.2);
    check_grad([&](auto& in) {
      Generator drops(14);
      nn::Context ctx{true, &drops};
      return vit.forward(in[0], ctx);
    }, input_and_parameters(images, vit, 200));
  }
  // The heads on tokens [B, N, dim] = [2, 5, 8], as the backbone hands them over.
  const Td tokens = uniform({2, 5, 8}, 15, -2, 2);
  SECTION("AllTokenHead: dropout, Linear, ReLU, Linear") {
    hash::AllTokenHead<6, double> head(5, 8, 3, gen);
    check_grad([&](auto& in) {
      Generator drops(16);
      nn::Context ctx{true, &drops};
      return head.forward(in[0], ctx);
    }, input_and_parameters(tokens, head, 300));
  }
  SECTION("ClsTokenHead and ClassifierHead read token 0") {
    hash::ClsTokenHead<double> cls(5, 8, 3, gen);
    nn::Context ctx;
    check_grad([&](auto& in) { return cls.forward(in[0], ctx); }, input_and_parameters(tokens, cls, 400));
    hash::ClassifierHead<double> classifier(8, 4, gen);
    check_grad([&](auto& in) { return classifier.forward(in[0]); }, input_and_parameters(tokens, classifier, 410));
  }
  SECTION("HashNetwork: ViT<Mini> and the all-token head, from the codes back to the first layer") {
    // Both parts are checked whole above; here the path between them, through three parameters at
    // the ends (all of them would take half a second), the images being data.
    hash::HashNetwork<nn::ViT<Mini, double>, hash::AllTokenHead<6, double>> net(3, gen);
    randomized_parameters(net, 500);
    check_grad([&](auto&) {
      Generator drops(17);
      nn::Context ctx{true, &drops};
      return net.forward(images, ctx);
    }, {net.backbone.patch_embed.weight, net.backbone.cls_token, net.head.fc2.weight});
  }
}
