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
