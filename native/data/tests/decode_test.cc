// Decoding against PIL's Image.open(...).convert("RGB"): JPEG (4:2:0, 4:2:2, 4:4:4,
// progressive, grayscale, CMYK), PNG (RGB, RGBA, L, LA, palette, palette + tRNS, 1-bit),
// libjpeg-turbo's DCT scaling against PIL's draft mode, and broken files.
#include <gtest/gtest.h>

#include "data/decode.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;

namespace {
const Refs& decode_refs() {
  static Refs refs("decode");
  return refs;
}
}  // namespace

TEST(Decode, SameRgbAsPillow) {
  const Refs& refs = decode_refs();
  Decoder dec;
  int n = 0;
  for (const std::string& c : refs.cases("decode/")) {
    const auto file = refs.at("decode/" + c + "/file").as<uint8_t>();
    const Image want = refs.at("decode/" + c + "/expected").image();
    const ImageInfo info = dec.probe(file.data(), file.size());
    EXPECT_EQ(info.width, want.width) << c;
    EXPECT_EQ(info.height, want.height) << c;
    Image got;
    dec.decode(file.data(), file.size(), 1, got);
    ASSERT_EQ(got.width, want.width) << c;
    ASSERT_EQ(got.height, want.height) << c;
    const Diff d = diff_u8(got.pixels, want.pixels);
    // Same libjpeg-turbo algorithms (accurate IDCT, fancy upsampling) and lossless PNG: exact.
    EXPECT_EQ(d.max, 0) << c << " (" << d.over1 << " values off by more than 1)";
    ++n;
  }
  EXPECT_EQ(n, 13);
}

TEST(Decode, DctScalingMatchesPillowDraft) {
  const Refs& refs = decode_refs();
  const auto file = refs.at("scaled/file").as<uint8_t>();
  Decoder dec;
  for (int d : {1, 2, 4, 8}) {
    const Image want = refs.at("scaled/" + std::to_string(d) + "/expected").image();
    Image got;
    dec.decode(file.data(), file.size(), d, got);
    ASSERT_EQ(got.width, jpeg_scaled(257, d));
    ASSERT_EQ(got.height, jpeg_scaled(203, d));
    EXPECT_EQ(diff_u8(got.pixels, want.pixels).max, 0) << "1/" << d;
  }
}

TEST(Decode, BrokenFilesThrowNamingTheProblem) {
  const Refs& refs = decode_refs();
  Decoder dec;
  int n = 0;
  for (const std::string& c : refs.cases("broken/")) {
    const auto file = refs.at("broken/" + c + "/file").as<uint8_t>();
    Image out;
    try {
      dec.probe(file.data(), file.size());
      dec.decode(file.data(), file.size(), 1, out);
      ADD_FAILURE() << c << " decoded without an error";
    } catch (const DataError& e) {
      EXPECT_GT(std::string(e.what()).size(), 5u) << c;
    }
    ++n;
  }
  EXPECT_EQ(n, 5);
  // The decoder is not left in a bad state by a failure: a good file right after a broken one.
  const auto good = refs.at("decode/jpeg420/file").as<uint8_t>();
  for (const char* c : {"jpegtrunc", "jpeghead", "text"}) {
    const auto bad = refs.at(std::string("broken/") + c + "/file").as<uint8_t>();
    Image out;
    EXPECT_THROW({ dec.probe(bad.data(), bad.size()); dec.decode(bad.data(), bad.size(), 1, out); }, DataError);
    EXPECT_EQ(dec.probe(good.data(), good.size()).width, 61) << "after " << c;
    dec.decode(good.data(), good.size(), 1, out);
    EXPECT_EQ(out.height, 47) << "after " << c;
  }
  // Not confused by the extension: format comes from the bytes.
  const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  EXPECT_EQ(sniff(png_sig, 8), Format::Png);
  EXPECT_THROW(dec.probe(png_sig, 8), DataError);  // a signature alone is not an image
}
