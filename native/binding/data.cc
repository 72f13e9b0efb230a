// Node-API front of the data pipeline: the view description shared by DataSet.augment and
// DataLoader, and the exports (the classes live in dataset.cc and loader.cc).
#include "binding/data.h"

#include "binding/addon.h"
#include "binding/batch.h"
#include "binding/convert.h"

namespace m2t::binding {

data::ViewConfig parse_view(Napi::Env env, Napi::Value v, const std::string& where) {
  Fields f = Fields::object(env, v, where);
  f.only({"size", "crop", "scale", "ratio", "resize", "jitterP", "brightness", "contrast", "saturation", "hue", "blurP",
          "sigma", "grayscaleP", "flipP", "solarizeP", "solarizeThreshold", "mean", "std", "scaledDecode"});
  data::ViewConfig c;
  const auto size = f.numbers("size", {224, 224});
  c.out_h = int(size[0]);
  c.out_w = int(size[1]);
  const std::string crop = f.string("crop", "random-resized");
  if (crop == "random-resized") c.crop = data::ViewConfig::Crop::RandomResized;
  else if (crop == "center") c.crop = data::ViewConfig::Crop::Center;
  else f.type_error("crop", "'random-resized' or 'center'");
  const auto scale = f.numbers("scale", {0.08, 1.0}), ratio = f.numbers("ratio", {3.0 / 4.0, 4.0 / 3.0});
  c.rrc = {scale[0], scale[1], ratio[0], ratio[1]};
  c.resize = int(f.integer("resize", 256, 0, 65536));
  c.jitter_p = f.number("jitterP", 0);
  c.brightness = f.number("brightness", 0);
  c.contrast = f.number("contrast", 0);
  c.saturation = f.number("saturation", 0);
  c.hue = f.number("hue", 0);
  c.blur_p = f.number("blurP", 0);
  const auto sigma = f.numbers("sigma", {0.1, 2.0});
  c.sigma_lo = sigma[0];
  c.sigma_hi = sigma[1];
  c.gray_p = f.number("grayscaleP", 0);
  c.flip_p = f.number("flipP", 0);
  c.solarize_p = f.number("solarizeP", 0);
  c.solarize_threshold = int(f.integer("solarizeThreshold", 128, 0, 256));
  const auto mean = f.numbers("mean", {0.485, 0.456, 0.406}), std = f.numbers("std", {0.229, 0.224, 0.225});
  for (int i = 0; i < 3; ++i) {
    c.mean[size_t(i)] = float(mean[size_t(i)]);
    c.std[size_t(i)] = float(std[size_t(i)]);
  }
  c.scaled_decode = f.boolean("scaledDecode", true);
  guarded(env, [&] { c.validate(where); });
  return c;
}

void InitData(Napi::Env env, Napi::Object exports) {
  exports.Set("DataSet", DefineDataSet(env));
  exports.Set("DataLoader", DefineDataLoader(env));
  exports.Set("releaseBatchArrays", Napi::Function::New(env, ReleaseBatchArrays));
  exports.Set("epochIndices", Napi::Function::New(env, EpochIndices));
  exports.Set("setMaxImagePixels", Napi::Function::New(env, SetMaxImagePixels));
}

}  // namespace m2t::binding
