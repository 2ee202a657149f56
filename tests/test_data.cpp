// Data readers and the hyper-cleaning protocol: round trips, and every bad input rejected
// with a message that names the file, the line or the argument.
#include "test_files.hpp"
#include "test_support.hpp"

#include <cstdio>
#include <fstream>
#include <random>

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

/// Split files of one data set share a class map and a dimension: here the validation file has
/// no sample of class 3 and no feature 4, and read alone it would map its labels {1, 7} to
/// {0, 1} and have 2 features.
TEST(LibsvmReader, SplitFilesShareClassesAndFeatures) {
  TempDir dir;
  std::ofstream(dir.file("train.svm")) << "1 1:1 4:2\n3 2:1\n7 1:3\n";
  std::ofstream(dir.file("val.svm")) << "7 2:1\n1 1:2\n";
  std::ofstream(dir.file("test.svm")) << "3 3:5\n";
  const std::vector<Dataset> s =
      read_libsvm_splits({dir.file("train.svm"), dir.file("val.svm"), dir.file("test.svm")});
  ASSERT_EQ(s.size(), 3u);
  for (const Dataset& d : s) {
    EXPECT_EQ(d.features, 4);
    EXPECT_EQ(d.classes, 3);
  }
  EXPECT_EQ(s[0].labels, (std::vector<std::int32_t>{0, 1, 2}));
  EXPECT_EQ(s[1].labels, (std::vector<std::int32_t>{2, 0}));
  EXPECT_EQ(s[2].labels, (std::vector<std::int32_t>{1}));  // one class alone is a split
  EXPECT_EQ(s[1].x, (std::vector<float>{0, 1, 0, 0, 2, 0, 0, 0}));
  EXPECT_EQ(read_libsvm(dir.file("val.svm")).features, 2);
  // errors name the file
  std::ofstream(dir.file("bad.svm")) << "1 1:2\n0 1:x\n";
  expect_message([&] { read_libsvm_splits({dir.file("train.svm"), dir.file("bad.svm")}); },
                 {dir.file("bad.svm"), "line 2"});
}

/// Given splits keep their samples and order, corrupt nothing, and are standardized with the
/// training split's statistics alone (or left as given).
TEST(GivenSplits, StandardizeOnTrainOnly) {
  Dataset train, validation, test;
  const auto make = [](Dataset& d, const char* name, std::vector<float> x, std::vector<std::int32_t> labels) {
    d.source = name;
    d.features = 2;
    d.samples = static_cast<index_t>(labels.size());
    d.classes = 2;
    d.x = std::move(x);
    d.labels = std::move(labels);
  };
  make(train, "train", {1, 5, 3, 5}, {0, 1});        // feature 0: mean 2, sd 1; feature 1 constant
  make(validation, "validation", {4, 6}, {1});
  make(test, "test", {0, 5, 2, 7}, {1, 0});
  const HypercleanData raw = prepare_given_splits(train, validation, test, false);
  EXPECT_EQ(raw.validation.x, validation.x);
  EXPECT_EQ(raw.train.labels, train.labels);
  EXPECT_EQ(raw.corrupted, (std::vector<std::uint8_t>{0, 0}));
  const HypercleanData h = prepare_given_splits(train, validation, test);
  EXPECT_EQ(h.train.x, (std::vector<float>{-1, 0, 1, 0}));
  EXPECT_EQ(h.validation.x, (std::vector<float>{2, 1}));  // (4 - 2) / 1, (6 - 5) / 1
  EXPECT_EQ(h.test.x, (std::vector<float>{-2, 0, 0, 2}));
  EXPECT_EQ(h.clean_train_labels, train.labels);
  Dataset wide = test;
  wide.features = 1;
  wide.x = {0, 2};
  expect_message([&] { prepare_given_splits(train, validation, wide); }, {"'test' has 1 features", "'train' (train) 2"});
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

// benchopt's label noise (benchmark_bilevel datasets/mnist.py): each train label redrawn with
// probability p from all C classes, so the share of wrong labels is p (C - 1) / C, not p, and
// a label may be redrawn to itself. The mask marks the labels that are wrong; no bias.
TEST(HypercleanSplit, BenchoptProtocolRedrawsEachLabelWithProbabilityP) {
  const Dataset pool = make_synthetic(6000, 4, 4, 5);
  const SplitSizes sizes{4000, 1000, 1000};
  for (const double p : {0.5, 1.0}) {
    SCOPED_TRACE("p " + std::to_string(p));
    const HypercleanData h =
        prepare_hyperclean(pool, std::nullopt, sizes, p, 11, HypercleanProtocol::benchopt);
    EXPECT_FALSE(h.bias);
    index_t wrong = 0;
    int hits[4][4] = {};
    for (index_t i = 0; i < sizes.train; ++i) {
      EXPECT_EQ(h.corrupted[i] != 0, h.train.labels[i] != h.clean_train_labels[i]) << i;
      wrong += h.corrupted[i];
      ++hits[h.clean_train_labels[i]][h.train.labels[i]];
    }
    // binomial(4000, 3p/4): 4 standard deviations at most 4 sqrt(4000 x 0.25) = 127
    const double expected = p * 0.75 * static_cast<double>(sizes.train);
    EXPECT_NEAR(static_cast<double>(wrong), expected, 127.0);
    // with p = 1 every label is a uniform draw: each true class goes to each class ~ 1/4
    if (p == 1.0)
      for (int a = 0; a < 4; ++a) {
        int row = 0;
        for (int b = 0; b < 4; ++b) row += hits[a][b];
        for (int b = 0; b < 4; ++b)
          EXPECT_NEAR(hits[a][b] / static_cast<double>(row), 0.25, 0.05) << a << " -> " << b;
      }
  }
  // ours: exactly round(p n) wrong, and a bias
  const HypercleanData ours = prepare_hyperclean(pool, std::nullopt, sizes, 0.5, 11);
  EXPECT_TRUE(ours.bias);
  EXPECT_EQ(std::count(ours.corrupted.begin(), ours.corrupted.end(), std::uint8_t{1}), 2000);
  // the split and the standardization do not depend on the protocol
  const HypercleanData theirs =
      prepare_hyperclean(pool, std::nullopt, sizes, 0.5, 11, HypercleanProtocol::benchopt);
  EXPECT_EQ(theirs.train.x, ours.train.x);
  EXPECT_EQ(theirs.clean_train_labels, ours.clean_train_labels);
  EXPECT_EQ(parse_hyperclean_protocol("benchopt"), HypercleanProtocol::benchopt);
  expect_message([] { parse_hyperclean_protocol("jax"); },
                 {"protocol must be bilevel or benchopt, got 'jax'"});
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

// A small data set written both ways: a LIBSVM file (sparse rows, three labels) and an IDX
// folder under the MNIST names (gzipped training pool, plain test set).
struct ShardFixture {
  TempDir dir;
  ShardFixture() {
    std::ofstream svm(dir.file("pool.svm"));
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (int i = 0; i < 61; ++i) {
      svm << (i % 3 == 0 ? "-1" : i % 3 == 1 ? "+1" : "7");
      for (int j = 1; j <= 6; ++j)
        if ((i + j) % 3 != 0) svm << " " << j << ":" << normal(rng) + (i % 3);
      svm << "\n";
      if (i % 10 == 0) svm << "# a comment line\n";
    }
    fs::create_directory(dir.file("idx"));
    const auto pixels = [&](int n) {
      std::vector<unsigned char> p;
      for (int k = 0; k < n * 6; ++k) p.push_back(static_cast<unsigned char>(rng() % 256));
      return p;
    };
    const auto labels = [&](int n) {
      std::vector<unsigned char> l;
      for (int k = 0; k < n; ++k) l.push_back(static_cast<unsigned char>(rng() % 10));
      return l;
    };
    write_gz(dir.file("idx/train-images-idx3-ubyte.gz"), idx_bytes(0x803, {50, 2, 3}, pixels(50)));
    write_gz(dir.file("idx/train-labels-idx1-ubyte.gz"), idx_bytes(0x801, {50}, labels(50)));
    write_raw(dir.file("idx/t10k-images-idx3-ubyte"), idx_bytes(0x803, {23, 2, 3}, pixels(23)));
    write_raw(dir.file("idx/t10k-labels-idx1-ubyte"), idx_bytes(0x801, {23}, labels(23)));
  }
};

// Every rank's shard, read from the file, is bit for bit its samples of the whole prepared
// data: features, corrupted and clean labels, and the whole corruption mask on every rank.
TEST(HypercleanShard, ShardsAreTheWholeDataSplitUp) {
  ShardFixture fx;
  for (const std::string spec : {fx.dir.file("pool.svm"), fx.dir.file("idx")}) {
    SCOPED_TRACE(spec);
    const DataSource source = load_data_source(spec);
    const SplitSizes sizes{31, 11, 13};
    for (const HypercleanProtocol protocol : {HypercleanProtocol::bilevel, HypercleanProtocol::benchopt}) {
    SCOPED_TRACE(to_string(protocol));
    const HypercleanData whole = prepare_hyperclean(source.pool, source.test, sizes, 0.3, 9, protocol);
    for (const int ranks : {1, 2, 3, 5}) {
      SCOPED_TRACE("ranks " + std::to_string(ranks));
      std::vector<float> x[3];
      std::vector<std::int32_t> labels[3], clean;
      for (int r = 0; r < ranks; ++r) {
        const HypercleanData h = load_hyperclean_shard(spec, sizes, 0.3, 9, r, ranks, "data", protocol);
        EXPECT_EQ(h.corrupted, whole.corrupted);
        EXPECT_EQ(h.bias, whole.bias);
        const Dataset* parts[3] = {&h.train, &h.validation, &h.test};
        const index_t totals[3] = {sizes.train, sizes.validation, sizes.test};
        for (int k = 0; k < 3; ++k) {
          const Shard s = Communicator::shard_of(totals[k], r, ranks);
          EXPECT_EQ(parts[k]->first, s.begin);
          EXPECT_EQ(parts[k]->total, totals[k]);
          EXPECT_EQ(parts[k]->samples, s.size());
          EXPECT_EQ(parts[k]->classes, whole.train.classes);
          x[k].insert(x[k].end(), parts[k]->x.begin(), parts[k]->x.end());
          labels[k].insert(labels[k].end(), parts[k]->labels.begin(), parts[k]->labels.end());
        }
        clean.insert(clean.end(), h.clean_train_labels.begin(), h.clean_train_labels.end());
      }
      EXPECT_EQ(x[0], whole.train.x);
      EXPECT_EQ(x[1], whole.validation.x);
      EXPECT_EQ(x[2], whole.test.x);
      EXPECT_EQ(labels[0], whole.train.labels);
      EXPECT_EQ(labels[1], whole.validation.labels);
      EXPECT_EQ(labels[2], whole.test.labels);
      EXPECT_EQ(clean, whole.clean_train_labels);
    }
    }
  }
}

TEST(HypercleanShard, BadInputIsNamed) {
  ShardFixture fx;
  const std::string svm = fx.dir.file("pool.svm");
  expect_message([&] { load_hyperclean_shard(svm, SplitSizes{31, 2, 13}, 0.3, 9, 0, 3, "--data"); },
                 {"the validation split's 2 samples cannot be shared by 3 ranks"});
  expect_message([&] { load_hyperclean_shard(svm, SplitSizes{51, 11, 13}, 0.3, 9, 0, 2, "--data"); },
                 {"split sizes do not fit", "has 61 samples", "needs 75"});
  expect_message([&] { load_hyperclean_shard(fx.dir.file("no.svm"), SplitSizes{}, 0.3, 9, 0, 2, "--data"); },
                 {"--data", "no.svm", "no such file"});
  std::ofstream(fx.dir.file("bad.svm")) << "1 1:2\n0 1:2\n1 1:x\n";
  expect_message([&] { load_hyperclean_shard(fx.dir.file("bad.svm"), SplitSizes{1, 1, 1}, 0.3, 9, 0, 1); },
                 {fx.dir.file("bad.svm"), "line 3", "bad value after index 1"});
  fs::remove(fx.dir.file("idx/t10k-labels-idx1-ubyte"));
  expect_message([&] { load_hyperclean_shard(fx.dir.file("idx"), SplitSizes{20, 5, 5}, 0.3, 9, 0, 2, "--data"); },
                 {"--data", "missing t10k-labels-idx1-ubyte"});
}

// A problem given a shard checks that it is the one its rank owns.
TEST(HypercleanShard, AProblemRefusesAnotherRanksShard) {
  ShardFixture fx;
  const HypercleanData h = load_hyperclean_shard(fx.dir.file("pool.svm"), SplitSizes{31, 11, 13}, 0.3, 9, 1, 2);
  expect_message([&] { HypercleanProblem<float> p(cpu(), h, 1e-3); },
                 {"the train data holds samples [16, 31) of 31 but rank 0 of 1 owns [0, 31)"});
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
