#include "core/param.h"

#include "core/error.h"

namespace m2t {

static int64_t aligned(int64_t n, DType t) {
  const int64_t per = 64 / static_cast<int64_t>(dtype_size(t));
  return (n + per - 1) / per * per;
}

ParamArena::ParamArena(const std::vector<Param*>& params, Device dev, bool with_grads) {
  for (DType t : {DType::F32, DType::BF16}) {
    Flat f{t, {}, {}, {}, {}};
    int64_t total = 0;
    for (Param* p : params) {
      if (p->value.dtype() != t) continue;
      f.segments.push_back({total, p->value.numel(), p->lars_adapted()});
      f.params.push_back(p);
      total += aligned(p->value.numel(), t);
    }
    if (f.params.empty()) continue;
    f.values = Tensor({total}, dev, t);
    if (with_grads) f.grads = Tensor({total}, dev, t);
    for (size_t i = 0; i < f.params.size(); ++i) {
      Param& p = *f.params[i];
      const Segment& s = f.segments[i];
      Tensor v = f.values.view(s.offset, p.value.shape());
      v.copy_from(p.value);
      p.value = v;
      p.grad = with_grads ? f.grads.view(s.offset, p.value.shape()) : Tensor();
    }
    flats_.push_back(std::move(f));
  }
}

ParamArena::Flat& ParamArena::flat(DType dtype) {
  for (Flat& f : flats_)
    if (f.dtype == dtype) return f;
  fail(ErrorKind::Error, "parameter arena: no ", dtype_name(dtype), " parameters");
}

Tensor ParamArena::like(DType dtype, std::vector<Tensor>* views) {
  Flat& f = flat(dtype);
  Tensor t(f.values.shape(), f.values.device(), dtype);
  if (views)
    for (size_t i = 0; i < f.params.size(); ++i)
      views->push_back(t.view(f.segments[i].offset, f.params[i]->value.shape()));
  return t;
}

}  // namespace m2t
