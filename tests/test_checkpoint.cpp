// Checkpoints: the solver hands over (x, y) at the right iterations, a run resumed from one
// continues exactly as the uninterrupted run, and checkpoint files round-trip and reject what
// is not theirs with a message naming the file.
#include "test_support.hpp"

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

TEST(Checkpoints, FilesRoundTripAndBadFilesAreNamed) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/bilevel_ckpt_test.bin";
  Checkpoint<float> c;
  c.iteration = 17, c.dx = 3, c.dy = 2, c.instances = 2;
  c.tag = "test run seed 5";
  c.x = {1, 2, 3, 4, 5, 6};
  c.y = {-1, -2, -3, -4};
  write_checkpoint(path, c);
  const Checkpoint<float> back = read_checkpoint<float>(path);
  EXPECT_EQ(back.iteration, 17);
  EXPECT_EQ(back.tag, "test run seed 5");
  EXPECT_EQ(back.x, c.x);
  EXPECT_EQ(back.y, c.y);
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
