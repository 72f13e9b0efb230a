// Tensors (device, dtype, views, copies), the caching allocator, parameter arenas and the
// backend registry.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "core/backend.h"
#include "core/error.h"
#include "core/param.h"
#include "core/tensor.h"

namespace m2t::test {
namespace {

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(3).str(), "cuda:3");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  for (const char* bad : {"", "gpu", "cuda", "cuda:", "cuda:-1", "cuda:1x", "cuda:1024", "CPU"}) {
    try {
      parse_device(bad, "device");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::RangeError);
      EXPECT_NE(std::string(e.what()).find("device"), std::string::npos) << e.what();
    }
  }
}

TEST(Backends, CpuIsBuiltAndCudaIsAClearError) {
  EXPECT_EQ(&backend_for(Device::cpu()), &cpu_backend());
  EXPECT_EQ(available_backends().front(), "cpu");
  ASSERT_FALSE(built_backends().empty());
  try {
    backend_for(Device::cuda(0));
    ADD_FAILURE() << "cuda:0 resolved in a CPU-only build";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no CUDA backend"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor({2}, Device::cuda(0)), Error);
}

TEST(Tensor, DtypeSizesAndZeroFill) {
  Tensor a({3, 5});
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.nbytes(), 60u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(a.data()[i], 0.0f);
  Tensor b({7}, Device::cpu(), DType::BF16);
  EXPECT_EQ(b.nbytes(), 14u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.raw()) % 64, 0u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(static_cast<const uint16_t*>(b.raw())[i], 0);
  EXPECT_THROW(b.fill(1.0f), Error);
  EXPECT_EQ(Tensor({3}, Device::cpu(), DType::I32).nbytes(), 12u);
  EXPECT_STREQ(dtype_name(DType::I32), "i32");
  EXPECT_THROW(a.copy_from(Tensor({15}, Device::cpu(), DType::BF16)), Error);
}

TEST(Tensor, ViewsShareStorageAndCopiesAreExplicit) {
  Tensor flat({10});
  for (int i = 0; i < 10; ++i) flat.data()[i] = static_cast<float>(i);
  Tensor v = flat.view(4, {2, 3});
  EXPECT_TRUE(v.same_storage(flat));
  EXPECT_EQ(v.data()[0], 4.0f);
  v.fill(-1.0f);
  EXPECT_EQ(flat.data()[4], -1.0f);
  EXPECT_EQ(flat.data()[9], -1.0f);
  EXPECT_EQ(flat.data()[3], 3.0f);
  EXPECT_THROW(flat.view(5, {6}), Error);
  // to() on the same device shares; clone() copies.
  Tensor same = flat.to(Device::cpu());
  EXPECT_TRUE(same.same_storage(flat));
  Tensor c = flat.clone();
  EXPECT_FALSE(c.same_storage(flat));
  c.data()[0] = 42;
  EXPECT_EQ(flat.data()[0], 0.0f);
  float out[6];
  v.copy_to_host(out);
  EXPECT_EQ(out[5], -1.0f);
  const float in[6] = {1, 2, 3, 4, 5, 6};
  v.copy_from_host(in);
  EXPECT_EQ(flat.data()[9], 6.0f);
  // A view that grows detaches from its storage instead of overrunning it.
  v.resize({20});
  EXPECT_FALSE(v.same_storage(flat));
  EXPECT_EQ(flat.data()[9], 6.0f);
}

TEST(CachingAllocator, ReusesFreedBlocksAndReleasesOnAMiss) {
  int raw_allocs = 0, raw_frees = 0;
  CachingAllocator a(
      [&](size_t n) {
        ++raw_allocs;
        return std::aligned_alloc(64, n);
      },
      [&](void* p, size_t) {
        ++raw_frees;
        std::free(p);
      });
  void* p = a.allocate(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  a.deallocate(p);
  EXPECT_EQ(a.stats().cached, 1024u);
  void* q = a.allocate(1000);  // same size class: the cached block
  EXPECT_EQ(q, p);
  EXPECT_EQ(raw_allocs, 1);
  a.deallocate(q);
  void* r = a.allocate(100000);  // a miss returns the cache to the system first
  EXPECT_EQ(raw_allocs, 2);
  EXPECT_EQ(raw_frees, 1);
  EXPECT_EQ(a.stats().cached, 0u);
  EXPECT_EQ(a.stats().in_use, 100032u);
  a.deallocate(r);
  void* s = a.allocate(10);  // far smaller than the cached block: a miss, the cache is released
  EXPECT_EQ(raw_allocs, 3);
  EXPECT_EQ(raw_frees, 2);
  EXPECT_EQ(a.stats().in_use, 64u);
  a.deallocate(s);
  a.release_cached();
  EXPECT_EQ(a.stats().cached, 0u);
  EXPECT_EQ(raw_allocs, raw_frees);
}

TEST(ParamArena, PacksValuesAndGradsIntoAlignedFlatBuffers) {
  Param w{"w", ParamKind::ConvWeight, Tensor({2, 3}), Tensor({2, 3})};
  Param b{"b", ParamKind::BnBias, Tensor({5}), Tensor({5})};
  for (int i = 0; i < 6; ++i) w.value.data()[i] = static_cast<float>(i + 1);
  for (int i = 0; i < 5; ++i) b.value.data()[i] = static_cast<float>(-i);
  ParamArena arena({&w, &b}, Device::cpu(), /*with_grads=*/true);
  ASSERT_EQ(arena.flats().size(), 1u);
  ParamArena::Flat& f = arena.flat(DType::F32);
  ASSERT_EQ(f.segments.size(), 2u);
  EXPECT_EQ(f.segments[0].offset, 0);
  EXPECT_EQ(f.segments[1].offset, 16);  // 64-byte boundary
  EXPECT_TRUE(f.segments[0].lars_adapted);
  EXPECT_FALSE(f.segments[1].lars_adapted);
  EXPECT_EQ(f.values.numel(), 32);
  EXPECT_TRUE(w.value.same_storage(f.values));
  EXPECT_TRUE(b.grad.same_storage(f.grads));
  EXPECT_EQ(w.value.shape(), (Shape{2, 3}));
  EXPECT_EQ(f.values.data()[5], 6.0f);
  EXPECT_EQ(f.values.data()[6], 0.0f);  // padding
  EXPECT_EQ(f.values.data()[18], -2.0f);
  b.grad.fill(3.0f);
  EXPECT_EQ(f.grads.data()[20], 3.0f);
  std::vector<Tensor> views;
  Tensor buf = arena.like(DType::F32, &views);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[1].shape(), (Shape{5}));
  EXPECT_TRUE(views[1].same_storage(buf));
  EXPECT_EQ(views[1].data(), buf.data() + 16);
  // Without gradients, the grads are released.
  Param t{"t", ParamKind::LinearBias, Tensor({4}), Tensor({4})};
  ParamArena frozen({&t}, Device::cpu(), false);
  EXPECT_TRUE(t.grad.empty());
  EXPECT_TRUE(frozen.flat(DType::F32).grads.empty());
  EXPECT_THROW(frozen.flat(DType::BF16), Error);
}

}  // namespace
}  // namespace m2t::test
