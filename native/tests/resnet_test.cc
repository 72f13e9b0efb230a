// The ResNet family's topology: parameter counts equal torchvision's (without the fc layer),
// feature widths, the width multiplier and the small stem.
#include "core/error.h"
#include "models/resnet.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

int64_t count(const EncoderConfig& c) {
  ResNet net(cpu_backend(), c, "");
  Registry r;
  net.register_in(r);
  int64_t n = 0;
  for (const Param* p : r.params()) n += p->value.numel();
  return n;
}

TEST(ResNet, ParameterCountsMatchTorchvision) {
  // torchvision resnetXX().parameters() minus fc (2048·1000 + 1000 or 512·1000 + 1000).
  EXPECT_EQ(count({"resnet18", 1.0, false}), 11689512 - 513000);
  EXPECT_EQ(count({"resnet34", 1.0, false}), 21797672 - 513000);
  EXPECT_EQ(count({"resnet50", 1.0, false}), 25557032 - 2049000);
  EXPECT_EQ(count({"resnet101", 1.0, false}), 44549160 - 2049000);
  EXPECT_EQ(count({"resnet152", 1.0, false}), 60192808 - 2049000);
}

TEST(ResNet, FeatureWidthsStemsAndValidation) {
  EXPECT_EQ(ResNet(cpu_backend(), {"resnet18", 1.0, false}, "").feature_dim(), 512);
  EXPECT_EQ(ResNet(cpu_backend(), {"resnet50", 1.0, false}, "").feature_dim(), 2048);
  EXPECT_EQ(ResNet(cpu_backend(), {"resnet50", 0.5, false}, "").feature_dim(), 1024);
  // Small stem: 3x3 conv, no max pool, so a 28 px image reaches layer4 at 4x4.
  ResNet small(cpu_backend(), {"resnet18", 0.125, true}, "");
  EXPECT_EQ(count({"resnet18", 1.0, true}), 11689512 - 513000 - 64 * 3 * (49 - 9));
  const Tensor& f = small.forward(gen("x", {2, 28, 28, 3}), 1, BnMode::Train);
  EXPECT_EQ(f.shape(), (Shape{2, 64}));
  EXPECT_THROW(ResNet(cpu_backend(), {"resnet20", 1.0, false}, ""), Error);
  EXPECT_THROW(ResNet(cpu_backend(), {"resnet18", 0.0, false}, ""), Error);
  EXPECT_THROW(ResNet(cpu_backend(), {"resnet18", 0.001, false}, ""), Error);
}

}  // namespace
}  // namespace m2t::test
