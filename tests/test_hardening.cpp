// Hostile inputs (the hardening issue): sizes that would wrap, claims larger than the file,
// damaged gzip streams, labels outside the declared range, LIBSVM corner cases. Every case
// must end in an InvalidArgument that names the file (and line) - never a crash, a wrapped
// allocation, a silent acceptance or a bare std::bad_alloc.
#include "test_files.hpp"
#include "test_support.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace bilevel::test {
namespace {

// ---- 1. size arithmetic that wraps -------------------------------------------------------

TEST(Hardening, CheckedArithmeticRefusesWrappingProducts) {
  EXPECT_EQ(checked_mul(index_t(3), index_t(4), "x"), 12);
  expect_message([] { checked_mul(index_t(1) << 40, index_t(1) << 30, "rows x columns"); },
                 {"rows x columns", "overflows"});
  expect_message([] { checked_add(std::numeric_limits<index_t>::max(), index_t(1), "--train + --test"); },
                 {"--train + --test", "overflows"});
  expect_message([] { checked_mul(index_t(-1), index_t(2), "a size"); }, {"a size", "negative"});
}

TEST(Hardening, ArraysOfWrappingSizesAreRefused) {
  expect_message([] { Array<float>(cpu(), std::numeric_limits<index_t>::max() / 2, 4); },
                 {"Array", "overflows"});
}

TEST(Hardening, LibsvmIndexOf19DigitsIsRefusedNamingTheLine) {
  TempDir dir;
  std::ofstream(dir.file("big.svm")) << "1 1:2\n0 9999999999999999999:1\n";
  expect_message([&] { read_libsvm(dir.file("big.svm")); },
                 {dir.file("big.svm"), "line 2", "feature index", "out of range"});
}

/// Found by fuzz_idx: image dimensions whose product wraps a 64-bit integer.
TEST(Hardening, IdxImageDimensionsThatWrapAreRefused) {
  TempDir dir;
  write_raw(dir.file("i"), idx_bytes(0x803, {1, 0xffffffffu, 0xffffffffu}, {}));
  write_raw(dir.file("l"), idx_bytes(0x801, {1}, {0}));
  expect_message([&] { read_idx(dir.file("i"), dir.file("l")); },
                 {dir.file("i"), "image rows x columns", "overflows"});
}

// ---- 2. allocation from claimed sizes ----------------------------------------------------

TEST(Hardening, AbsurdDenseWidthIsRefusedWithWhatItWouldNeed) {
  TempDir dir;
  std::ofstream(dir.file("wide.svm")) << "1 1:2\n0 10000000:1\n";
  expect_message([&] { read_libsvm(dir.file("wide.svm")); },
                 {dir.file("wide.svm"), "line 2", "10000000 features", "sparse input"});
}

TEST(Hardening, IdxHeaderClaimingMoreThanTheFileHoldsIsRefused) {
  TempDir dir;
  // 2^30 images of 28 x 28 claimed by a file of a few bytes (plain and gzipped)
  write_raw(dir.file("i"), idx_bytes(0x803, {1u << 30, 28, 28}, std::vector<unsigned char>(100)));
  write_raw(dir.file("l"), idx_bytes(0x801, {1u << 30}, std::vector<unsigned char>(100)));
  expect_message([&] { read_idx(dir.file("i"), dir.file("l")); },
                 {dir.file("i"), "claims", "holds"});
  write_gz(dir.file("i.gz"), idx_bytes(0x803, {1u << 22, 28, 28}, std::vector<unsigned char>(100)));
  write_gz(dir.file("l.gz"), idx_bytes(0x801, {1u << 22}, std::vector<unsigned char>(100)));
  expect_message([&] { read_idx(dir.file("i.gz"), dir.file("l.gz")); },
                 {dir.file("i.gz"), "truncated"});
}

TEST(Hardening, CheckpointHeaderClaimingMoreThanTheFileHoldsIsRefused) {
  TempDir dir;
  Checkpoint<float> c;
  c.iteration = 3, c.dx = 2, c.dy = 3, c.instances = 1, c.tag = "t";
  c.x = {1, 2};
  c.y = {3, 4, 5};
  write_checkpoint(dir.file("c.ckpt"), c);
  // rewrite dx as 2^40 in the header
  std::fstream f(dir.file("c.ckpt"), std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8 + 4 + 4 + 8);
  const std::int64_t huge = std::int64_t(1) << 40;
  f.write(reinterpret_cast<const char*>(&huge), sizeof huge);
  f.close();
  expect_message([&] { read_checkpoint<float>(dir.file("c.ckpt")); },
                 {dir.file("c.ckpt"), "claims"});
}

// ---- 3. gzip errors ----------------------------------------------------------------------

TEST(Hardening, GzipWithABadCrcIsAnErrorNamingTheFile) {
  TempDir dir;
  std::vector<unsigned char> pixels(3 * 2 * 2, 7);
  write_gz(dir.file("i.gz"), idx_bytes(0x803, {3, 2, 2}, pixels));
  write_raw(dir.file("l"), idx_bytes(0x801, {3}, {0, 1, 2}));
  std::ifstream in(dir.file("i.gz"), std::ios::binary);
  std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz[gz.size() - 8] ^= 0x5a;  // the CRC-32 of the trailer
  std::ofstream(dir.file("bad.gz"), std::ios::binary).write(gz.data(), static_cast<std::streamsize>(gz.size()));
  expect_message([&] { read_idx(dir.file("bad.gz"), dir.file("l")); }, {dir.file("bad.gz")});
}

// ---- 4. labels ---------------------------------------------------------------------------

TEST(Hardening, IdxLabelsOutsideTheDeclaredRangeAreRefused) {
  TempDir dir;
  write_raw(dir.file("i"), idx_bytes(0x803, {3, 2, 2}, std::vector<unsigned char>(12, 1)));
  write_raw(dir.file("l"), idx_bytes(0x801, {3}, {0, 200, 2}));
  expect_message([&] { read_idx(dir.file("i"), dir.file("l")); },
                 {dir.file("l"), "label 200", "sample 1", "0..9"});
  // with a declared range that holds it, it is read
  EXPECT_EQ(read_idx(dir.file("i"), dir.file("l"), 256).classes, 256);
}

TEST(Hardening, OneClassIsRefusedByBothReaders) {
  TempDir dir;
  write_raw(dir.file("i"), idx_bytes(0x803, {3, 2, 2}, std::vector<unsigned char>(12, 1)));
  write_raw(dir.file("l"), idx_bytes(0x801, {3}, {4, 4, 4}));
  expect_message([&] { read_idx(dir.file("i"), dir.file("l")); },
                 {dir.file("l"), "all samples have the same label"});
  std::ofstream(dir.file("one.svm")) << "3 1:1\n3 2:1\n";
  expect_message([&] { read_libsvm(dir.file("one.svm")); },
                 {dir.file("one.svm"), "all samples have the same label"});
}

// ---- 5. LIBSVM details -------------------------------------------------------------------

TEST(Hardening, LibsvmCornerCases) {
  TempDir dir;
  const auto write = [&](const std::string& body) {
    std::ofstream(dir.file("c.svm"), std::ios::binary).write(body.data(), static_cast<std::streamsize>(body.size()));
    return dir.file("c.svm");
  };
  // a NUL byte does not silently drop the rest of a line
  expect_message([&] { read_libsvm(write(std::string("1 1:1\n0 1:2\0 2:3\n", 17))); },
                 {"line 2", "NUL"});
  // a label beyond the integers a class id can come from
  expect_message([&] { read_libsvm(write("1 1:1\n1e19 1:2\n")); }, {"line 2", "label", "range"});
  // 1e-400 is 0 in IEEE: accepted as 0
  const Dataset d = read_libsvm(write("1 1:1e-400 2:1\n0 1:1\n"));
  EXPECT_EQ(d.x[0], 0.0f);
  EXPECT_EQ(d.x[1], 1.0f);
  // no row has a feature
  expect_message([&] { read_libsvm(write("1\n0\n")); }, {"no sample has a feature"});
  // a binary file: the message quotes a short, escaped excerpt
  std::string binary = "1 ";
  for (int i = 0; i < 5000; ++i) binary += static_cast<char>(1 + (i * 37) % 250);
  try {
    read_libsvm(write(binary));
    ADD_FAILURE() << "binary file accepted";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_LT(m.size(), 400u) << m;
    EXPECT_NE(m.find(dir.file("c.svm")), std::string::npos) << m;
    for (char ch : m) EXPECT_TRUE(ch >= 32 && ch < 127) << "raw byte in the message: " << m;
  }
}


// ---- 6. checkpoints and divergence -------------------------------------------------------

Checkpoint<double> small_checkpoint() {
  Checkpoint<double> c;
  c.iteration = 3, c.dx = 2, c.dy = 3, c.instances = 1, c.tag = "t";
  c.x = {1, 2};
  c.y = {3, 4, 5};
  return c;
}

TEST(Hardening, ADivergedStateNeverReplacesACheckpoint) {
  TempDir dir;
  const std::string path = dir.file("c.ckpt");
  write_checkpoint(path, small_checkpoint());
  Checkpoint<double> bad = small_checkpoint();
  bad.iteration = 9;
  bad.y[1] = std::nan("");
  try {
    write_checkpoint(path, bad);
    ADD_FAILURE() << "a NaN state was written";
  } catch (const DivergenceError& e) {
    EXPECT_NE(std::string(e.what()).find("y[1] of instance 0"), std::string::npos) << e.what();
    EXPECT_EQ(e.iteration(), 9);
  }
  EXPECT_EQ(read_checkpoint<double>(path).iteration, 3) << "the previous checkpoint stays";
}

TEST(Hardening, CheckpointBitFlipsAndNonFiniteValuesAreRefused) {
  TempDir dir;
  const std::string path = dir.file("c.ckpt");
  write_checkpoint(path, small_checkpoint());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  const std::size_t payload = bytes.size() - 5 * sizeof(double);
  // one bit of y flipped
  std::string flipped = bytes;
  flipped[payload + 3 * sizeof(double) + 2] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(flipped.data(), static_cast<std::streamsize>(flipped.size()));
  expect_message([&] { read_checkpoint<double>(path); }, {path, "CRC-32"});
  // an Inf with a matching CRC (a state that diverged before the file was written elsewhere)
  std::string inf = bytes;
  const double value = INFINITY;
  std::memcpy(&inf[payload], &value, sizeof value);
  // (format 4: the CRC covers the whole file with its own field zero)
  const std::size_t crc_at = 8 + 4 + 4 + 4 * 8;
  std::memset(&inf[crc_at], 0, sizeof(std::uint32_t));
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(inf.data()), static_cast<uInt>(inf.size()));
  const std::uint32_t crc32_value = static_cast<std::uint32_t>(crc);
  std::memcpy(&inf[crc_at], &crc32_value, sizeof crc32_value);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(inf.data(), static_cast<std::streamsize>(inf.size()));
  expect_message([&] { read_checkpoint<double>(path); }, {path, "diverged state", "x[0] of instance 0"});
}

/// With eval_every = 0 (no evaluation until the end), a run that diverges is still stopped
/// within 2 x divergence_check_every iterations, not after all of them.
TEST(Hardening, DivergenceIsCaughtWithoutEvaluations) {
  QuadraticProblem<double> p(cpu(), QuadraticData::identity(4));
  AlgorithmOptions o = default_options("stocbio");
  o.loop.iterations = 100000;
  o.loop.eval_every = 0;
  o.loop.outer_step = {50.0};  // far beyond 2 / L_F: x grows by ~50x per iteration
  o.loop.divergence_check_every = 50;
  try {
    make_solver(p, o)->run(std::vector<double>(4, 1.0), std::vector<double>(4, 0.0));
    ADD_FAILURE() << "no divergence reported";
  } catch (const DivergenceError& e) {
    EXPECT_LE(e.iteration(), 100) << e.what();
  }
}


// ---- memory you can plan with (large-scale issue) ----------------------------------------

/// The plan made before allocating matches what a SOBA and a stocBiO run hold at their peak
/// (within 5%, data-dominated sizes), and bounds it from above; bf16 halves the features.
TEST(MemoryPlan, MatchesWhatARunHolds) {
  auto exec = cpu();
  for (const char* name : {"soba", "stocbio", "srba", "vrbo", "pzobo"})
    for (const index_t nb : {index_t(1), index_t(4)}) {
      SCOPED_TRACE(std::string(name) + ", B " + std::to_string(nb));
      const std::size_t before = exec->memory_in_use();
      const SyntheticHypercleanSpec spec{50000, 5000, 5000, 64, 10, 0.5, 1};
      HypercleanProblem<float> p(exec, spec, 3e-3, nullptr);
      const std::vector<std::uint8_t> mask(50000, 0);
      p.set_detection_truth(mask);
      AlgorithmOptions o = default_options(name);
      o.loop.iterations = 2;
      o.loop.eval_every = 1;
      o.loop.lower_batch = o.loop.upper_batch = 512;
      o.loop.init_steps = 0;
      std::size_t peak = 0;
      make_solver(p, o)->run(std::vector<float>(p.dim_x() * nb, 0.f),
                             std::vector<float>(p.dim_y() * nb, 0.f),
                             [&](const IterationMetrics&) {
                               peak = std::max(peak, exec->memory_in_use() - before);
                             });
      const HypercleanMemory plan = HypercleanProblem<float>::memory_plan(
          50000, 5000, 5000, 64, 10, nb, 512, DataPrecision::same, false, solver_x_arrays(name));
      EXPECT_GE(plan.total(), peak);
      EXPECT_LT(double(plan.total() - peak) / double(peak), 0.05)
          << "plan " << plan.total() << " bytes, held " << peak;
      const HypercleanMemory half = HypercleanProblem<float>::memory_plan(
          50000, 5000, 5000, 64, 10, nb, 512, DataPrecision::bf16, false, solver_x_arrays(name));
      EXPECT_LT(half.features, plan.features * 6 / 10);
    }
}

/// Training features in host memory (read in place by the kernels): the same iterates as on
/// the executor, and the plan's executor share matches what the run holds there (the training
/// features no longer count). On the CPU both are host memory; CudaHostResidentDataGivesTheSameRun
/// checks the mapped path on a GPU.
TEST(HostResidentData, SameIteratesAndThePlanLeavesTheFeaturesOut) {
  auto exec = cpu();
  const SyntheticHypercleanSpec spec{20000, 2000, 2000, 32, 10, 0.5, 3};
  std::vector<float> x[2];
  for (int host = 0; host < 2; ++host) {
    const std::size_t before = exec->memory_in_use();
    HypercleanProblem<float> p(exec, spec, 3e-3, nullptr, DataPrecision::same,
                               host ? DataResidence::host : DataResidence::device);
    EXPECT_EQ(p.data_residence(), host ? DataResidence::host : DataResidence::device);
    AlgorithmOptions o = default_options("soba");
    o.loop.iterations = 20;
    o.loop.eval_every = 10;
    o.loop.lower_batch = o.loop.upper_batch = 512;
    std::size_t peak = 0;
    const SolveResult<float> r =
        make_solver(p, o)->run(std::vector<float>(p.dim_x(), 0.f), std::vector<float>(p.dim_y(), 0.f),
                               [&](const IterationMetrics&) {
                                 peak = std::max(peak, exec->memory_in_use() - before);
                               });
    x[host] = r.x;
    const HypercleanMemory plan = HypercleanProblem<float>::memory_plan(
        20000, 2000, 2000, 32, 10, 1, 512, DataPrecision::same, false, solver_x_arrays("soba"),
        host ? DataResidence::host : DataResidence::device);
    EXPECT_GE(plan.total(), peak);
    EXPECT_LT(double(plan.total() - peak) / double(peak), 0.05);
    if (host) {
      EXPECT_EQ(plan.host, std::size_t(33) * 20000 * sizeof(float));
    }
  }
  EXPECT_EQ(x[0], x[1]);
}

/// bf16 training data in host memory is generated chunk by chunk (no full-precision copy):
/// the same bits as generated at once on the executor, for the plain and the harder generator.
TEST(HostResidentData, ChunkedBf16GenerationGivesTheSameData) {
  auto exec = cpu();
  for (const double spread : {1.0, 10.0}) {
    SyntheticHypercleanSpec spec{150000, 1000, 1000, 8, 4, 0.5, 5};
    spec.feature_scale_spread = spread;
    spec.correlation = spread > 1 ? 1.0 : 0.0;
    HypercleanProblem<float> device(exec, spec, 3e-3, nullptr, DataPrecision::bf16,
                                    DataResidence::device);
    HypercleanProblem<float> host(exec, spec, 3e-3, nullptr, DataPrecision::bf16,
                                  DataResidence::host);
    EXPECT_EQ(device.features_of(DataSplit::train), host.features_of(DataSplit::train))
        << "spread " << spread;
    EXPECT_EQ(device.features_of(DataSplit::validation), host.features_of(DataSplit::validation));
  }
}

TEST(HostResidentData, CudaHostResidentDataGivesTheSameRun) {
  BILEVEL_REQUIRE_CUDA(gpu);
  // (smaller on the emulated device, which runs each element's thread as a fiber: generating
  // 24,000 x 32 samples there took minutes under AddressSanitizer)
  const index_t train = cuda_device_is_emulated() ? 3000 : 20000;
  const SyntheticHypercleanSpec spec{train, 600, 600, 32, 10, 0.5, 3};
  std::vector<float> x[2];
  for (int host = 0; host < 2; ++host)
    for (DataPrecision precision : {DataPrecision::same, DataPrecision::bf16}) {
      HypercleanProblem<float> p(gpu, spec, 3e-3, nullptr, precision,
                                 host ? DataResidence::host : DataResidence::device);
      AlgorithmOptions o = default_options("soba");
      o.loop.iterations = 20;
      o.loop.lower_batch = o.loop.upper_batch = 512;
      const SolveResult<float> r = make_solver(p, o)->run(std::vector<float>(p.dim_x(), 0.f),
                                                          std::vector<float>(p.dim_y(), 0.f));
      if (precision == DataPrecision::same) x[host] = r.x;
    }
  EXPECT_LT(relative_error(x[1], x[0]), 1e-6);  // (atomics may reorder the last bits)
}

}  // namespace
}  // namespace bilevel::test
