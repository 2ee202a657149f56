"""bilevel's presets as solvers of benchopt's bilevel benchmark (benchopt/benchmark_bilevel).

benchopt hands a solver the problem as two JAX functions of minibatch slices,
``f_inner(inner_var, outer_var, start, batch_size)`` (g: inner_var is y, outer_var is x) and
``f_outer(...)`` (f), with the numbers of samples and the start point. :func:`solver_class`
builds a benchopt ``Solver`` class that runs one of bilevel's presets on them:

- the problem is :func:`bilevel.jax_problem` over the flattened variables, with g and f on a
  minibatch the mean of the per-sample functions (``f_inner(y, x, i, batch_size=1)`` for each
  drawn index i, vectorized by ``jax.vmap``), on a full pass the functions on the whole split;
- bilevel draws the minibatches (uniform indices, its seed), where benchopt's JAX solvers walk
  shuffled contiguous slices;
- every ``eval_freq`` iterations benchopt's callback evaluates the objective, and the solve
  resumes where it stopped (``bilevel.solve(..., resume=)``: the same iterates as one run).

This is the generic path: the oracles are JAX functions called from Python, one call per oracle
(about 0.1-1 ms each), so it shows that bilevel's algorithms solve benchopt's problems, not
bilevel's speed. Speed on datacleaning is ``bilevel hyperclean --protocol benchopt`` (built-in
fused oracles) against benchopt's solvers: ``bench/compare/benchopt_datacleaning.py``.

To add the solvers to a checkout of the benchmark::

    python -m bilevel.benchopt PATH/TO/benchmark_bilevel soba stocbio
    benchopt run PATH/TO/benchmark_bilevel -s bilevel-soba -s SOBA -d mnist ...

which writes ``solvers/bilevel_soba.py`` and ``solvers/bilevel_stocbio.py``, each one line
over this module.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Optional

import numpy as np

from benchopt import BaseSolver
from benchopt.stopping_criterion import SufficientProgressCriterion

# the parameters benchopt varies, with their defaults: the step sizes of benchopt's own solvers
# (solvers/soba.py, stocbio.py: step_size 0.1, outer_ratio 1, batch 64)
_DEFAULTS = {"batch_size": 64, "inner_step": 0.1, "outer_step": 0.1, "eval_freq": 128,
             "random_state": 1}


class BilevelSolver(BaseSolver):
    """One of bilevel's presets (``algorithm``) as a benchopt solver; see the module docstring.
    Subclassed per preset by :func:`solver_class`."""

    algorithm = "soba"
    name = "bilevel-soba"
    parameters = {k: [v] for k, v in _DEFAULTS.items()}
    sampling_strategy = "callback"
    stopping_criterion = SufficientProgressCriterion(patience=12_800, strategy="callback")
    requirements = ["jax", "jaxlib"]

    def set_objective(self, f_inner, f_outer, n_inner_samples, n_outer_samples, inner_var0,
                      outer_var0):
        import jax
        import jax.numpy as jnp
        from jax.flatten_util import ravel_pytree

        from . import jax_problem

        y0, unravel_y = ravel_pytree(inner_var0)
        x0, unravel_x = ravel_pytree(outer_var0)
        self._unravel = (unravel_x, unravel_y)
        n_in, n_out = int(n_inner_samples), int(n_outer_samples)

        def mean_over(fun, n):
            def h(x, y, idx):
                yy, xx = unravel_y(y.astype(y0.dtype)), unravel_x(x.astype(x0.dtype))
                if idx is None:  # a full pass
                    return fun(yy, xx, 0, batch_size=n)
                return jnp.mean(jax.vmap(lambda i: fun(yy, xx, i, batch_size=1))(idx))
            return h

        self._problem = jax_problem(mean_over(f_inner, n_in), mean_over(f_outer, n_out),
                                    dim_x=x0.size, dim_y=y0.size, lower_samples=n_in,
                                    upper_samples=n_out)
        self._x0 = np.asarray(x0, dtype=np.float64)
        self._y0 = np.asarray(y0, dtype=np.float64)
        self._x, self._y = self._x0, self._y0
        batch = self.batch_size
        self._options = dict(
            lower_batch=n_in if batch == "full" else min(int(batch), n_in),
            upper_batch=n_out if batch == "full" else min(int(batch), n_out),
            inner_step=float(self.inner_step), outer_step=float(self.outer_step),
            seed=int(self.random_state), eval_every=0)

    def warm_up(self):
        # JAX compiles the oracles on their first calls: not inside benchopt's timed run
        self.run_once(2)

    def run(self, callback):
        import bilevel

        result, done = None, 0
        self._x, self._y = self._x0, self._y0
        while callback():
            done += int(self.eval_freq)
            if result is None:
                result = bilevel.solve(self._problem, self.algorithm, x0=self._x0, y0=self._y0,
                                       iterations=done, progress=False, **self._options)
            else:
                with warnings.catch_warnings():
                    # a later segment of a converged run may leave x where it is (float32
                    # oracles at their fixed point): not the bug that warning is for
                    warnings.filterwarnings("ignore", message=r"instance \d+: x did not move")
                    result = bilevel.solve(self._problem, self.algorithm, iterations=done,
                                           resume=result, progress=False, **self._options)
            self._x, self._y = result.x[0], result.y[0]

    def get_result(self):
        import jax.numpy as jnp

        unravel_x, unravel_y = self._unravel
        return dict(inner_var=unravel_y(jnp.asarray(self._y, dtype=jnp.float32)),
                    outer_var=unravel_x(jnp.asarray(self._x, dtype=jnp.float32)))


def solver_class(algorithm: str, **defaults) -> type:
    """A benchopt Solver class running bilevel's preset ``algorithm`` (see
    :func:`bilevel.algorithms`), named ``bilevel-<algorithm>``; ``defaults`` override the
    parameters' defaults (batch_size, inner_step, outer_step, eval_freq, random_state)."""
    import bilevel

    known = {a["name"] for a in bilevel.algorithms()}
    if algorithm not in known:
        raise ValueError(f"solver_class(): unknown algorithm {algorithm!r}; known: "
                         f"{', '.join(sorted(known))}")
    unknown = set(defaults) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"solver_class(): unknown parameter(s) {sorted(unknown)}; known: "
                        f"{', '.join(sorted(_DEFAULTS))}")
    params = {k: [defaults.get(k, v)] for k, v in _DEFAULTS.items()}
    return type(f"Bilevel_{algorithm.replace('-', '_')}", (BilevelSolver,),
                {"algorithm": algorithm, "name": f"bilevel-{algorithm}", "parameters": params,
                 "__module__": __name__})


_SOLVER_FILE = '''"""bilevel's {algorithm} preset (written by python -m bilevel.benchopt)."""
from bilevel.benchopt import solver_class

Solver = solver_class("{algorithm}")
'''


def write_solver_files(benchmark: str, algorithms) -> list:
    """Writes solvers/bilevel_<algorithm>.py into a checkout of benchmark_bilevel for each
    algorithm; returns their paths. Refuses a folder without objective.py and solvers/."""
    solvers = os.path.join(benchmark, "solvers")
    if not (os.path.isfile(os.path.join(benchmark, "objective.py")) and os.path.isdir(solvers)):
        raise FileNotFoundError(f"{benchmark}: not a benchopt benchmark (no objective.py and "
                                f"solvers/)")
    paths = []
    for a in algorithms:
        solver_class(a)  # refuses an unknown name before anything is written
        path = os.path.join(solvers, f"bilevel_{a.replace('-', '_')}.py")
        with open(path, "w") as out:
            out.write(_SOLVER_FILE.format(algorithm=a))
        paths.append(path)
    return paths


def main(argv: Optional[list] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print("usage: python -m bilevel.benchopt BENCHMARK_DIR ALGORITHM...\n"
              "writes solvers/bilevel_<algorithm>.py into a checkout of benchmark_bilevel",
              file=sys.stderr)
        return 2
    try:
        for path in write_solver_files(argv[0], argv[1:]):
            print(f"wrote {path}")
    except (ValueError, FileNotFoundError) as e:
        print(f"bilevel.benchopt: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
