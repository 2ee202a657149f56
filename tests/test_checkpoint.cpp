// Checkpoints: the solver hands over (x, y) at the right iterations, a run resumed from one
// continues exactly as the uninterrupted run, and checkpoint files round-trip and reject what
// is not theirs with a message naming the file.
#include "test_support.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace bilevel::test {
namespace {

AlgorithmOptions stochastic_stocbio(index_t iterations) {
  AlgorithmOptions o = default_options("stocbio");
  o.loop.iterations = iterations;
  o.loop.inner_steps = 3;
  o.loop.inner_step = {0.2};
  o.loop.outer_step = {0.1, 0.05};
  o.loop.lower_batch = o.loop.upper_batch = 32;
  o.loop.seed = 4;
  o.neumann = NeumannOptions{5, {0.2}};
  return o;
}

TEST(Checkpoints, HandedOverAtTheirIterationsWithThatState) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  const std::vector<double> x0 = random_vector<double>(10, 1), y0 = random_vector<double>(16, 2);
  AlgorithmOptions o = stochastic_stocbio(30);
  o.loop.checkpoint_every = 10;
  o.loop.eval_every = 7;
  std::vector<Checkpoint<double>> saved;
  make_solver(p, o)->run(x0, y0, {}, {}, [&](const Checkpoint<double>& c) { saved.push_back(c); });
  ASSERT_EQ(saved.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(saved[i].iteration, index_t(10 * (i + 1)));
    EXPECT_EQ(saved[i].dx, 5);
    EXPECT_EQ(saved[i].instances, 2);
  }
  // checkpoint 20 is the state after 20 iterations
  const SolveResult<double> short_run = make_solver(p, stochastic_stocbio(20))->run(x0, y0);
  EXPECT_EQ(saved[1].x, short_run.x);
  EXPECT_EQ(saved[1].y, short_run.y);
}

/// A checkpoint is handed over only after the metrics of every evaluation up to its iteration
/// (metrics are read one evaluation late): a run killed after writing checkpoint k and resumed
/// from it has every metrics line up to k. (The evaluations here are every 4 iterations and
/// the checkpoints every 2: evaluation 4's metrics were read at evaluation 8, after
/// checkpoint 4 had been written at iteration 6.)
TEST(Checkpoints, FollowTheMetricsOfTheirIterations) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  const std::vector<double> x0 = random_vector<double>(10, 1), y0 = random_vector<double>(16, 2);
  AlgorithmOptions o = stochastic_stocbio(16);
  o.loop.checkpoint_every = 2;
  o.loop.eval_every = 4;
  std::vector<std::pair<char, index_t>> events;
  make_solver(p, o)->run(
      x0, y0, [&](const IterationMetrics& m) { events.emplace_back('e', m.iteration); }, {},
      [&](const Checkpoint<double>& c) { events.emplace_back('c', c.iteration); });
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].first != 'c') continue;
    for (index_t k = 4; k <= events[i].second; k += 4) {
      const bool seen = std::any_of(events.begin(), events.begin() + static_cast<long>(i),
                                    [k](const auto& e) { return e.first == 'e' && e.second == k; });
      EXPECT_TRUE(seen) << "checkpoint " << events[i].second << " before the metrics of " << k;
    }
  }
}

TEST(Checkpoints, AResumedRunContinuesTheUninterruptedOne) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  const std::vector<double> x0 = random_vector<double>(10, 1), y0 = random_vector<double>(16, 2);
  const SolveResult<double> whole = make_solver(p, stochastic_stocbio(40))->run(x0, y0);
  const SolveResult<double> first = make_solver(p, stochastic_stocbio(25))->run(x0, y0);
  AlgorithmOptions rest = stochastic_stocbio(40);
  rest.loop.start_iteration = 25;
  const SolveResult<double> second = make_solver(p, rest)->run(first.x, first.y);
  // stocBiO keeps no state between iterations besides x and y: the same bits
  EXPECT_EQ(second.x, whole.x);
  EXPECT_EQ(second.y, whole.y);
  AlgorithmOptions bad = stochastic_stocbio(10);
  bad.loop.start_iteration = 11;
  EXPECT_THROW(make_solver(p, bad), InvalidArgument);
}

// Every preset resumes bit for bit: the run stopped at a checkpoint and resumed from it (x, y
// and the carried state: the upper update's m, a warm-started v, F2SA's z, LV-HBA's theta,
// lambda, z) ends where the uninterrupted run ends. Without the carried state the presets that
// carry some do not (the test can fail).
/// A preset on its test problem (the quadratic; LV-HBA's toy for lv-hba), two instances, the
/// preset's defaults with at most 3 inner steps and no evaluations.
struct PresetCase {
  static constexpr index_t nb = 2;
  explicit PresetCase(const std::string& name)
      : quadratic(cpu(), QuadraticData::random(5, 8, 200, 2)),
        toy(cpu(), 3),
        problem(name == "lv-hba" ? static_cast<Problem<double>&>(toy) : quadratic),
        options(default_options(name)),
        x0(random_vector<double>(problem.dim_x() * nb, 1)),
        y0(random_vector<double>(problem.dim_y() * nb, 2)) {
    options.loop.inner_steps = std::min<index_t>(options.loop.inner_steps, 3);
    options.loop.lower_batch = options.loop.upper_batch = name == "lv-hba" ? 0 : 32;
    options.loop.eval_every = 0;
  }
  QuadraticProblem<double> quadratic;
  LvHbaToy<double> toy;
  Problem<double>& problem;
  AlgorithmOptions options;
  std::vector<double> x0, y0;
};

class ResumedPreset : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumedPreset, ContinuesBitForBitWithItsCarriedState) {
  const std::string name = GetParam();
  PresetCase c(name);
  Problem<double>& p = c.problem;
  const std::vector<double>&x0 = c.x0, &y0 = c.y0;
  AlgorithmOptions o = c.options;
  o.loop.iterations = 40;
  o.loop.seed = 4;
  const SolveResult<double> whole = make_solver(p, o)->run(x0, y0);
  AlgorithmOptions first_part = o;
  first_part.loop.iterations = 25;
  first_part.loop.checkpoint_every = 25;
  Checkpoint<double> saved;
  make_solver(p, first_part)->run(x0, y0, {}, {}, [&](const Checkpoint<double>& each) { saved = each; });
  ASSERT_EQ(saved.iteration, 25);
  // through a file, as the CLI resumes
  const std::string path = ::testing::TempDir() + "/bilevel_resume_" + name + ".ckpt";
  write_checkpoint(path, saved);
  const Checkpoint<double> back = read_checkpoint<double>(path);
  std::remove(path.c_str());
  ASSERT_EQ(back.state, saved.state);
  AlgorithmOptions rest = o;
  rest.loop.start_iteration = 25;
  auto solver = make_solver(p, rest);
  solver->restore_state(back.state);
  const SolveResult<double> resumed = solver->run(back.x, back.y);
  EXPECT_EQ(resumed.x, whole.x) << name;
  EXPECT_EQ(resumed.y, whole.y) << name;
  if (!back.state.empty()) {
    // the state matters: without it the run does not end in the same place
    auto fresh = make_solver(p, rest);
    const SolveResult<double> afresh = fresh->run(back.x, back.y);
    EXPECT_NE(afresh.x, whole.x) << name;
  }
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const AlgorithmInfo& a : algorithm_presets()) names.push_back(a.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Presets, ResumedPreset, ::testing::ValuesIn(preset_names()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// An instance that diverges is checkpointed at its start, carried state included: F2SA's z
// restarts at y0 and LV-HBA's theta at y0, lambda at lambda0 and z at z0 (not at zero), so that
// in the resumed run the instance continues as a run started afresh at that iteration would.
class DivergedPreset : public ::testing::TestWithParam<std::string> {};

TEST_P(DivergedPreset, RestartsAtItsStartValuesWithItsCarriedState) {
  const std::string name = GetParam();
  PresetCase c(name);
  Problem<double>& p = c.problem;
  const std::vector<double>&x0 = c.x0, &y0 = c.y0;
  AlgorithmOptions o = c.options;
  o.loop.iterations = 20;
  o.loop.divergence_check_every = 5;
  o.loop.checkpoint_every = 20;
  const double step = o.loop.outer_step[0];
  o.loop.outer_step = {step, 1e6};  // instance 1 explodes
  Checkpoint<double> saved;
  const SolveResult<double> r = make_solver(p, o)->run(
      x0, y0, {}, {}, [&](const Checkpoint<double>& each) { saved = each; });
  ASSERT_EQ(r.diverged_at[0], -1) << name;
  ASSERT_GE(r.diverged_at[1], 0) << name;
  ASSERT_EQ(saved.iteration, 20);
  ASSERT_FALSE(saved.state.empty()) << name;
  // resume with a sane step for both: instance 1 goes on exactly as a fresh start of it
  AlgorithmOptions rest = o;
  rest.loop.outer_step = {step, step};
  rest.loop.iterations = 30;
  rest.loop.start_iteration = 20;
  rest.loop.checkpoint_every = 0;
  auto resumed_solver = make_solver(p, rest);
  resumed_solver->restore_state(saved.state);
  const SolveResult<double> resumed = resumed_solver->run(saved.x, saved.y);
  const SolveResult<double> fresh = make_solver(p, rest)->run(saved.x, saved.y);
  const index_t dx = p.dim_x(), dy = p.dim_y();
  EXPECT_LT(relative_error(column(resumed.x, dx, 1), column(fresh.x, dx, 1)), 1e-12) << name;
  EXPECT_LT(relative_error(column(resumed.y, dy, 1), column(fresh.y, dy, 1)), 1e-12) << name;
  // and instance 0 keeps its own state (a fresh start of it ends elsewhere)
  EXPECT_NE(column(resumed.x, dx, 0), column(fresh.x, dx, 0)) << name;
}

INSTANTIATE_TEST_SUITE_P(Presets, DivergedPreset, ::testing::Values("f2sa", "lv-hba"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// A finished run hands back its carried state: x, y and that state continue it exactly in a
// longer run (what the Python package's solve(..., resume=result) does).
TEST(Checkpoints, ARunContinuesFromItsResult) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  AlgorithmOptions o = default_options("bo-rep");
  o.loop.iterations = 50;
  o.loop.lower_batch = o.loop.upper_batch = 32;
  const std::vector<double> x0 = random_vector<double>(10, 1), y0 = random_vector<double>(16, 2);
  const SolveResult<double> whole = make_solver(p, o)->run(x0, y0);
  AlgorithmOptions first = o;
  first.loop.iterations = 30;
  const SolveResult<double> part = make_solver(p, first)->run(x0, y0);
  ASSERT_EQ(part.carried_state.size(), 2u);  // the momentum m (dx x B) and the warm-started v
  EXPECT_EQ(part.carried_state[0].size(), 10u);
  AlgorithmOptions rest = o;
  rest.loop.start_iteration = 30;
  auto solver = make_solver(p, rest);
  solver->restore_state(part.carried_state);
  const SolveResult<double> continued = solver->run(part.x, part.y);
  EXPECT_EQ(continued.x, whole.x);
  EXPECT_EQ(continued.y, whole.y);
  EXPECT_EQ(continued.carried_state, whole.carried_state);
  // outside a run there is nothing to read
  EXPECT_TRUE(solver->read_carried_state().empty());
}

// What carries state, and a state that does not fit the run is refused by name.
TEST(Checkpoints, CarriedStateIsCheckedAgainstTheRun) {
  const QuadraticData q = QuadraticData::random(5, 8, 200, 2);
  QuadraticProblem<double> p(cpu(), q);
  AlgorithmOptions o = default_options("soba");
  o.loop.iterations = 10;
  o.loop.checkpoint_every = 10;
  const std::vector<double> x0(10, 0.0), y0(16, 0.0);
  Checkpoint<double> saved;
  make_solver(p, o)->run(x0, y0, {}, {}, [&](const Checkpoint<double>& c) { saved = c; });
  ASSERT_EQ(saved.state.size(), 1u);  // SOBA: the warm-started v (dy x B)
  EXPECT_EQ(saved.state[0].size(), 16u);
  AlgorithmOptions bo = default_options("bo-rep");
  bo.loop.iterations = 20;
  bo.loop.start_iteration = 10;
  auto other = make_solver(p, bo);
  other->restore_state(saved.state);  // BO-REP carries m (dx x B) and v
  try {
    other->run(saved.x, saved.y);
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("the state to resume holds 1 array(s); this run of "
                                         "fixed-point carries 2"),
              std::string::npos)
        << e.what();
  }
  std::vector<std::vector<double>> wrong_size = {std::vector<double>(4, 0.0)};
  AlgorithmOptions again = o;
  again.loop.iterations = 20;
  again.loop.start_iteration = 10;
  auto soba = make_solver(p, again);
  soba->restore_state(wrong_size);
  EXPECT_THROW(soba->run(saved.x, saved.y), InvalidArgument);
}

TEST(Checkpoints, FilesRoundTripAndBadFilesAreNamed) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/bilevel_ckpt_test.bin";
  Checkpoint<float> c;
  c.iteration = 17, c.dx = 3, c.dy = 2, c.instances = 2;
  c.tag = "test run seed 5";
  c.x = {1, 2, 3, 4, 5, 6};
  c.y = {-1, -2, -3, -4};
  c.state = {{7, 8}, {}, {9, 10, 11, 12}};
  write_checkpoint(path, c);
  const Checkpoint<float> back = read_checkpoint<float>(path);
  EXPECT_EQ(back.iteration, 17);
  EXPECT_EQ(back.tag, "test run seed 5");
  EXPECT_EQ(back.x, c.x);
  EXPECT_EQ(back.y, c.y);
  EXPECT_EQ(back.state, c.state);
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { read_checkpoint<double>(path); }).find("holds float values; this run is double"),
            std::string::npos);
  EXPECT_NE(message([&] { read_checkpoint<float>(dir + "/no_such_checkpoint"); }).find("cannot open checkpoint file"),
            std::string::npos);
  {  // a file the version 2 writer wrote (the fuzz corpus keeps one) reads, with no state
    const Checkpoint<double> v2 =
        read_checkpoint<double>(std::string(BILEVEL_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint/double");
    EXPECT_EQ(v2.dx, 2);
    EXPECT_EQ(v2.instances, 2);
    EXPECT_EQ(v2.tag.rfind("hyperclean soba seed 1", 0), 0u) << v2.tag;
    EXPECT_TRUE(v2.state.empty());
  }
  {  // the settings travel with the file, and the CRC covers the header: a flipped bit in the
     // iteration (or anywhere) is refused
    Checkpoint<float> with = c;
    with.settings = "algorithm=soba\nloop.lower_batch=32\n";
    write_checkpoint(path, with);
    EXPECT_EQ(read_checkpoint<float>(path).settings, with.settings);
    for (const std::streamoff at : {std::streamoff(16), std::streamoff(100), std::streamoff(330)}) {
      write_checkpoint(path, with);
      std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
      f.seekg(at);
      char b = 0;
      f.get(b);
      f.seekp(at);
      f.put(static_cast<char>(b ^ 1));
      f.close();
      EXPECT_NE(message([&] { read_checkpoint<float>(path); }).find("is damaged"), std::string::npos)
          << "byte " << at;
    }
    EXPECT_EQ(settings_difference(with.settings, with.settings), "");
    EXPECT_EQ(settings_difference(with.settings, "algorithm=soba\nloop.lower_batch=16\n"),
              "loop.lower_batch: 32 in the checkpoint, 16 now");
    EXPECT_EQ(settings_difference("problem.mu=1e-07\nalgorithm=soba\n", "algorithm=sgd\nproblem.mu=2e-07\n"),
              "problem.mu: 1e-07 in the checkpoint, 2e-07 now; algorithm: soba in the checkpoint, "
              "sgd now");
    // an option added after the file was written: agrees at its default, not otherwise
    const std::string defaults = describe_settings(AlgorithmOptions{});
    EXPECT_EQ(settings_difference("algorithm=srba\n", "algorithm=srba\nsrba_period=0\n", defaults), "");
    EXPECT_EQ(settings_difference("algorithm=srba\n", "algorithm=srba\nsrba_period=5\n", defaults),
              "srba_period: (none) in the checkpoint, 5 now");
    EXPECT_EQ(settings_difference("algorithm=srba\n", "algorithm=srba\nproblem.dx=4\n", defaults),
              "problem.dx: (none) in the checkpoint, 4 now");
  }
  {  // versions 3 (the fuzz corpus keeps one) and 2 are still read; 5 is not
    const Checkpoint<float> v3 =
        read_checkpoint<float>(std::string(BILEVEL_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint/float_with_state");
    EXPECT_FALSE(v3.state.empty());
    EXPECT_TRUE(v3.settings.empty());
    write_checkpoint(path, c);
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    const std::uint32_t version = 5;
    f.seekp(8);
    f.write(reinterpret_cast<const char*>(&version), sizeof version);
    f.close();
    EXPECT_NE(message([&] { read_checkpoint<float>(path); }).find("has version 5, this build reads 2 to 4"),
              std::string::npos);
    write_checkpoint(path, c);
  }
  {  // truncated
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 4));
  }
  const std::string truncated = message([&] { read_checkpoint<float>(path); });
  EXPECT_NE(truncated.find("is truncated"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find(path), std::string::npos) << truncated;
  {
    std::ofstream out(path, std::ios::trunc);
    out << "x,y\n1,2\n";
  }
  EXPECT_NE(message([&] { read_checkpoint<float>(path); }).find("is not a bilevel checkpoint"),
            std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace bilevel::test
