// Data readers and the hyper-cleaning protocol: round trips, and every bad input rejected
// with a message that names the file, the line or the argument.
#include "test_files.hpp"
#include "test_support.hpp"

#include <cstdio>
#include <fstream>

namespace bilevel::test {
namespace {

struct IdxFixture {
  TempDir dir;
  std::vector<unsigned char> pixels, labels;
  IdxFixture() {
    for (int i = 0; i < 3 * 2 * 2; ++i) pixels.push_back(static_cast<unsigned char>(i * 20));
    labels = {2, 0, 1};
  }
  std::vector<unsigned char> images() const { return idx_bytes(0x803, {3, 2, 2}, pixels); }
  std::vector<unsigned char> label_file() const { return idx_bytes(0x801, {3}, labels); }
};

TEST(IdxReader, ReadsGzippedAndPlainFiles) {
  IdxFixture fx;
  write_gz(fx.dir.file("i.gz"), fx.images());
  write_raw(fx.dir.file("l"), fx.label_file());
  const Dataset d = read_idx(fx.dir.file("i.gz"), fx.dir.file("l"));
  EXPECT_EQ(d.samples, 3);
  EXPECT_EQ(d.features, 4);
  EXPECT_EQ(d.classes, 10);  // the declared range of (Fashion-)MNIST labels, not the largest + 1
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{2, 0, 1}));
  EXPECT_EQ(d.x[5], 100.0f);  // sample 1, pixel 1
}

TEST(IdxReader, MissingFileIsNamed) {
  IdxFixture fx;
  write_raw(fx.dir.file("l"), fx.label_file());
  expect_message([&] { read_idx(fx.dir.file("nope"), fx.dir.file("l")); },
                 {"cannot open", fx.dir.file("nope")});
}

TEST(IdxReader, WrongMagicIsNamed) {
  IdxFixture fx;
  write_raw(fx.dir.file("i"), fx.label_file());  // a label file where images are expected
  write_raw(fx.dir.file("l"), fx.label_file());
  expect_message([&] { read_idx(fx.dir.file("i"), fx.dir.file("l")); },
                 {fx.dir.file("i"), "wrong IDX magic number 0x00000801", "expected 0x00000803"});
}

TEST(IdxReader, SizeMismatchIsNamed) {
  IdxFixture fx;
  write_raw(fx.dir.file("i"), idx_bytes(0x803, {4, 2, 2}, fx.pixels));  // announces 4 images, holds 3
  write_raw(fx.dir.file("l"), idx_bytes(0x801, {4}, {1, 2, 3, 4}));
  expect_message([&] { read_idx(fx.dir.file("i"), fx.dir.file("l")); },
                 {fx.dir.file("i"), "truncated", "pixels"});
  write_raw(fx.dir.file("l3"), fx.label_file());
  expect_message([&] { read_idx(fx.dir.file("i"), fx.dir.file("l3")); },
                 {"holds 4 images", "holds 3 labels"});
  write_raw(fx.dir.file("i_extra"), idx_bytes(0x803, {2, 2, 2}, fx.pixels));  // 3 images' bytes for 2
  write_raw(fx.dir.file("l2"), idx_bytes(0x801, {2}, {0, 1}));
  expect_message([&] { read_idx(fx.dir.file("i_extra"), fx.dir.file("l2")); },
                 {"more data than the header"});
}

TEST(IdxReader, TruncatedGzipStreamIsNamed) {
  IdxFixture fx;
  std::vector<unsigned char> big = fx.images();
  write_gz(fx.dir.file("full.gz"), idx_bytes(0x803, {3, 2, 2}, fx.pixels));
  std::ifstream in(fx.dir.file("full.gz"), std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() - 12);  // cut the stream's tail
  std::ofstream(fx.dir.file("cut.gz"), std::ios::binary).write(gz.data(), gz.size());
  write_raw(fx.dir.file("l"), fx.label_file());
  expect_message([&] { read_idx(fx.dir.file("cut.gz"), fx.dir.file("l")); },
                 {fx.dir.file("cut.gz"), "truncated or corrupt"});
}

TEST(LibsvmReader, ParsesSparseLinesAndMapsLabels) {
  TempDir dir;
  std::ofstream(dir.file("a.svm")) << "# comment\n+1 1:0.5 3:2\n-1 2:-1.5\n\n+1 3:1e-1 # tail\n";
  const Dataset d = read_libsvm(dir.file("a.svm"));
  EXPECT_EQ(d.samples, 3);
  EXPECT_EQ(d.features, 3);
  EXPECT_EQ(d.classes, 2);
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{1, 0, 1}));
  EXPECT_EQ(d.x, (std::vector<float>{0.5f, 0, 2, 0, -1.5f, 0, 0, 0, 0.1f}));
}

TEST(LibsvmReader, MalformedLinesNameFileAndLine) {
  TempDir dir;
  const auto check = [&](const std::string& body, const std::vector<std::string>& parts) {
    std::ofstream(dir.file("b.svm")) << body;
    std::vector<std::string> all{dir.file("b.svm")};
    all.insert(all.end(), parts.begin(), parts.end());
    expect_message([&] { read_libsvm(dir.file("b.svm")); }, all);
  };
  check("1 1:2\n0 1:x\n", {"line 2", "bad value after index 1"});
  check("1 1:2\nzero 1:1\n", {"line 2", "label must be an integer"});
  check("1 1:2\n0 3:1 2:1\n", {"line 2", "indices must increase"});
  check("1 0:2\n", {"line 1", "indices start at 1"});
  check("1 1:2 junk\n", {"line 1", "expected index:value"});
  check("1 1:nan\n0 1:1\n", {"line 1", "feature 1 is nan"});
  check("1 1:1\n0 2:inf\n", {"line 2", "feature 2 is inf"});
  check("1 1:1\n1 2:1\n", {"all samples have the same label"});
  expect_message([&] { read_libsvm(dir.file("missing.svm")); }, {"cannot open", "missing.svm"});
}

TEST(Dataset, ValidateNamesBadLabelsAndValues) {
  Dataset d;
  d.source = "hand-made";
  d.samples = 2;
  d.features = 1;
  d.classes = 2;
  d.x = {1.0f, 2.0f};
  d.labels = {0, 5};
  expect_message([&] { d.validate(); }, {"hand-made", "label 5 of sample 1 is outside [0, 2)"});
  d.labels = {0, 1};
  d.x[1] = std::numeric_limits<float>::infinity();
  expect_message([&] { d.validate(); }, {"hand-made", "feature 0 of sample 1 is inf"});
}

TEST(HypercleanSplit, SizesStandardizationAndCorruption) {
  const Dataset pool = make_synthetic(1000, 8, 4, 3);
  const HypercleanData h = prepare_hyperclean(pool, std::nullopt, SplitSizes{600, 200, 150}, 0.25, 7);
  EXPECT_EQ(h.train.samples, 600);
  EXPECT_EQ(h.validation.samples, 200);
  EXPECT_EQ(h.test.samples, 150);
  index_t bad = 0;
  for (index_t i = 0; i < 600; ++i) {
    bad += h.corrupted[i];
    if (h.corrupted[i]) {
      EXPECT_NE(h.train.labels[i], h.clean_train_labels[i]);
    } else {
      EXPECT_EQ(h.train.labels[i], h.clean_train_labels[i]);
    }
  }
  EXPECT_EQ(bad, 150);
  for (index_t j = 0; j < 8; ++j) {
    double mean = 0, sq = 0;
    for (index_t i = 0; i < 600; ++i) mean += h.train.x[i * 8 + j] / 600.0;
    for (index_t i = 0; i < 600; ++i) sq += std::pow(h.train.x[i * 8 + j] - mean, 2) / 600.0;
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(sq, 1.0, 1e-4);
  }
  // the same seed gives the same split
  const HypercleanData again = prepare_hyperclean(pool, std::nullopt, SplitSizes{600, 200, 150}, 0.25, 7);
  EXPECT_EQ(again.corrupted, h.corrupted);
  EXPECT_EQ(again.train.x, h.train.x);
}

TEST(HypercleanSplit, ImpossibleSizesAndCorruptionAreRejected) {
  const Dataset pool = make_synthetic(100, 3, 2, 1);
  expect_message([&] { prepare_hyperclean(pool, std::nullopt, SplitSizes{80, 20, 10}, 0.5, 1); },
                 {"split sizes do not fit", "has 100 samples", "needs 110"});
  expect_message([&] { prepare_hyperclean(pool, std::nullopt, SplitSizes{50, 20, 10}, 1.5, 1); },
                 {"--corruption must be in [0, 1], got 1.5"});
  expect_message([&] { prepare_hyperclean(pool, std::nullopt, SplitSizes{0, 20, 10}, 0.5, 1); },
                 {"split sizes must be positive"});
  Dataset test = make_synthetic(30, 3, 3, 2);  // 3 classes where train has 2
  expect_message([&] { prepare_hyperclean(pool, test, SplitSizes{50, 20, 10}, 0.5, 1); },
                 {"label outside the training classes"});
  expect_message([&] { make_synthetic(10, 0, 2, 1); }, {"--features must be > 0"});
}

TEST(DetectionScores, HandChecked) {
  // flagged 1,1,0,0,1 vs truth 1,0,1,0,1: TP 2, flagged 3, truth 3
  const DetectionScores s = detection_scores({1, 1, 0, 0, 1}, {1, 0, 1, 0, 1});
  EXPECT_DOUBLE_EQ(s.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.f1, 2.0 / 3.0);
  EXPECT_EQ(detection_scores({0, 0}, {1, 0}).f1, 0.0);
}

}  // namespace
}  // namespace bilevel::test
