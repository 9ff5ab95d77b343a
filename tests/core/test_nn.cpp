// Models composed from the layers the way a researcher builds one: a ViT of one's own
// configuration. What a slip in the configuration or the input gives.
// (Configurations that cannot work at all are compile errors: vit_config_errors.cpp.)
#include "test_util.hpp"

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
