"""bilevel's benchopt solvers (bilevel.benchopt) on a generated problem in benchopt's form:
f_inner / f_outer of (inner_var, outer_var, start, batch_size) as benchmark_bilevel's datasets
write them, the objective's dict as its objective.py hands it over, and benchopt's own
Solver machinery (parameters, _set_objective, run_once, the callback protocol). Skipped, with
the reason, where benchopt or JAX is missing."""
import numpy as np
import pytest

benchopt = pytest.importorskip("benchopt", reason="benchopt is not installed (pip install benchopt)")
jax = pytest.importorskip("jax", reason="JAX is not installed")

import jax.numpy as jnp  # noqa: E402

import bilevel  # noqa: E402
from bilevel.benchopt import solver_class, write_solver_files  # noqa: E402


class GeneratedDataset:
    """Per-sample quadratics in benchopt's layout (inner_var y of shape (dy,), outer_var x of
    shape (dx,)): g_i = |y - M_i x - c_i|^2 / 2, f_j = |y - b_j|^2 / 2 + lam |x|^2 / 2; the
    minibatch [start, start + batch_size) of the functions is their mean there."""

    def __init__(self, dx=3, dy=4, n=48, m=32, lam=0.3, seed=11):
        rng = np.random.default_rng(seed)
        # samples spread around a common M, c and b (a finite sum with moderate noise)
        self.M = (rng.normal(0, 1, (dy, dx)) / np.sqrt(dy)
                  + 0.2 * rng.normal(0, 1, (n, dy, dx))).astype(np.float32)
        self.c = (rng.normal(0, 1, dy) + 0.3 * rng.normal(0, 1, (n, dy))).astype(np.float32)
        self.b = (rng.normal(1, 1, dy) + 0.3 * rng.normal(0, 1, (m, dy))).astype(np.float32)
        self.lam, self.n, self.m, self.dx, self.dy = lam, n, m, dx, dy

    def answer(self):
        M, c, b = (np.float64(a).mean(0) for a in (self.M, self.c, self.b))
        return np.linalg.solve(M.T @ M + self.lam * np.eye(self.dx), M.T @ (b - c))

    def objective_dict(self):
        M, c, b, lam = jnp.asarray(self.M), jnp.asarray(self.c), jnp.asarray(self.b), self.lam

        from functools import partial

        @partial(jax.jit, static_argnames=("batch_size",))
        def f_inner(inner_var, outer_var, start=0, batch_size=1):
            Mb = jax.lax.dynamic_slice(M, (start, 0, 0), (batch_size, self.dy, self.dx))
            cb = jax.lax.dynamic_slice(c, (start, 0), (batch_size, self.dy))
            r = inner_var - Mb @ outer_var - cb
            return 0.5 * jnp.mean(jnp.sum(r ** 2, axis=1))

        @partial(jax.jit, static_argnames=("batch_size",))
        def f_outer(inner_var, outer_var, start=0, batch_size=1):
            bb = jax.lax.dynamic_slice(b, (start, 0), (batch_size, self.dy))
            return (0.5 * jnp.mean(jnp.sum((inner_var - bb) ** 2, axis=1))
                    + 0.5 * lam * outer_var @ outer_var)

        return dict(f_inner=f_inner, f_outer=f_outer, n_inner_samples=self.n,
                    n_outer_samples=self.m, inner_var0=jnp.zeros(self.dy),
                    outer_var0=jnp.zeros(self.dx))


class Objective:
    """What benchopt's _set_objective reads from benchmark_bilevel's objective.py."""

    def __init__(self, d):
        self.d = d

    def get_objective(self):
        return self.d.objective_dict()


def test_a_bilevel_solver_runs_through_benchopts_solver_protocol():
    d = GeneratedDataset()
    Solver = solver_class("soba", batch_size=16, inner_step=0.5, outer_step=0.02, eval_freq=200)
    assert Solver.name == "bilevel-soba" and issubclass(Solver, benchopt.BaseSolver)
    s = Solver.get_instance()  # as benchopt builds it: the parameters set from their lists
    skip, reason = s._set_objective(Objective(d))
    assert not skip, reason
    # the start point before any iteration, in benchopt's layout
    r0 = s.get_result()
    assert r0["inner_var"].shape == (4,) and r0["outer_var"].shape == (3,)
    assert float(jnp.abs(r0["outer_var"]).max()) == 0.0
    # benchopt's callback protocol: evaluate, run eval_freq iterations, evaluate, ...
    calls = []

    def callback():
        calls.append(np.asarray(s.get_result()["outer_var"], dtype=np.float64))
        return len(calls) <= 15  # 15 x 200 = 3000 iterations

    s.run(callback)
    assert len(calls) == 16
    x = np.asarray(s.get_result()["outer_var"], dtype=np.float64)
    x_star = d.answer()
    # minibatch noise leaves SOBA near the solution (measured: 0.8-1% of |x*| over two seeds)
    assert np.linalg.norm(x - x_star) < 0.05 * np.linalg.norm(x_star)
    assert np.linalg.norm(calls[1] - x_star) > np.linalg.norm(x - x_star)  # it moved toward it
    # run again (benchopt's repetitions): from the start point, the same iterates
    again = []

    def callback2():
        again.append(np.asarray(s.get_result()["outer_var"], dtype=np.float64))
        return len(again) <= 15

    s.run(callback2)
    np.testing.assert_array_equal(again[-1], calls[-1])


def test_full_batches_reach_the_solution():
    d = GeneratedDataset()
    Solver = solver_class("soba", batch_size="full", inner_step=0.5, outer_step=0.5,
                          eval_freq=1000)
    s = Solver.get_instance()  # as benchopt builds it: the parameters set from their lists
    s._set_objective(Objective(d))
    s.run_once(4)  # benchopt's warm-up path: 4 callbacks
    x = np.asarray(s.get_result()["outer_var"], dtype=np.float64)
    # float32 oracles (benchopt's data): the solution to float32's precision
    np.testing.assert_allclose(x, d.answer(), rtol=1e-4, atol=1e-5)


def test_solver_classes_and_files_refuse_what_they_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="unknown algorithm 'saga'"):
        solver_class("saga")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['step'\]"):
        solver_class("soba", step=0.1)
    with pytest.raises(FileNotFoundError, match="not a benchopt benchmark"):
        write_solver_files(str(tmp_path), ["soba"])
    (tmp_path / "solvers").mkdir()
    (tmp_path / "objective.py").write_text("")
    paths = write_solver_files(str(tmp_path), ["soba", "ma-soba"])
    assert [p.split("/")[-1] for p in paths] == ["bilevel_soba.py", "bilevel_ma_soba.py"]
    namespace = {}
    exec(compile(open(paths[1]).read(), paths[1], "exec"), namespace)  # the file as benchopt loads it
    assert namespace["Solver"].name == "bilevel-ma-soba"
