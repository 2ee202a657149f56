// Umbrella header of the bilevel library. Compiles with a plain C++17 compiler.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/checkpoint.hpp>
#include <bilevel/data.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>
#include <bilevel/estimators.hpp>
#include <bilevel/executor.hpp>
#include <bilevel/ops.hpp>
#include <bilevel/problem.hpp>
#include <bilevel/problems/bda_counterexample.hpp>
#include <bilevel/problems/hyperclean.hpp>
#include <bilevel/problems/l2_tuning.hpp>
#include <bilevel/problems/meta_mlp.hpp>
#include <bilevel/problems/mlp.hpp>
#include <bilevel/problems/quadratic.hpp>
#include <bilevel/problems/per_task_quadratic.hpp>
#include <bilevel/problems/gridworld_alignment.hpp>
#include <bilevel/problems/policy_alignment.hpp>
#include <bilevel/sampling.hpp>
#include <bilevel/solvers/solver.hpp>
#include <bilevel/solvers/lower_level.hpp>
#include <bilevel/solvers/alignment.hpp>
#include <bilevel/solvers/meta_learning.hpp>
#include <bilevel/types.hpp>
#include <bilevel/version.hpp>
