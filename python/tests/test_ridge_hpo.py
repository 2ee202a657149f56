"""The guide's worked example (examples/ridge-hpo/ridge_hpo.py, docs/your-own-problem.md):
ridge HPO with per-feature L2, from NumPy callbacks and from JAX's g and f alone, against the
closed form."""
import importlib.util
import pathlib

import numpy as np
import pytest

import bilevel

_EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "ridge-hpo" / "ridge_hpo.py"
_spec = importlib.util.spec_from_file_location("ridge_hpo", _EXAMPLE)
ridge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ridge)


@pytest.fixture(scope="module")
def data():
    return ridge.make_data()


@pytest.fixture(scope="module")
def reference(data):
    """Exact projected gradient descent: after AID-CG's iterations, and converged."""
    x0 = np.zeros(data["A"].shape[1])
    x_gd = ridge.projected_gradient_descent(data, x0, ridge.AID_CG["outer_step"],
                                            ridge.AID_CG["iterations"])
    F_min = ridge.closed_form(data, ridge.projected_gradient_descent(data, x0, 20.0, 2000))[2]
    return x0, x_gd, F_min


def _check_against_closed_form(problem, data, reference):
    x0, x_gd, F_min = reference
    report = bilevel.check_oracles(problem, np.full(len(x0), 0.3), np.linspace(-1, 1, len(x0)))
    assert report["passed"], report["text"]
    y_star, grad_F, F0 = ridge.closed_form(data, x0)
    np.testing.assert_allclose(bilevel.hypergradient(problem, x0, y_star)[0], grad_F,
                               rtol=1e-9, atol=1e-12)
    aid = bilevel.solve(problem, "aid-cg", **ridge.AID_CG)
    assert np.max(np.abs(aid.x[0] - x_gd)) < 1e-6
    assert np.all(aid.x[0] <= ridge.X_MAX) and np.all(aid.x[0] >= ridge.X_MIN)
    soba = bilevel.solve(problem, "soba", **ridge.SOBA)
    F = ridge.closed_form(data, soba.x[0])[2]
    assert F < 1.01 * F_min, (F, F_min, F0)


def test_numpy_callbacks_match_the_closed_form(data, reference):
    _check_against_closed_form(ridge.numpy_problem(data), data, reference)


def test_jax_g_and_f_alone_match_the_closed_form(data, reference):
    jax = pytest.importorskip("jax", reason="JAX is not installed: the g-and-f-only example "
                                            "needs it")
    with jax.enable_x64(True):
        _check_against_closed_form(ridge.jax_ridge_problem(data), data, reference)


def test_the_projection_is_what_keeps_the_example_stable(data):
    """Without the box the L2 weights of the noise features grow without bound (exact gradient
    descent has x_0 = 3.2 after 1000 steps), g's curvature with them, and the fixed lower-level
    step 0.1 diverges once L_g > 20: the projection is part of the problem, not decoration."""
    with pytest.raises(bilevel.DivergenceError, match="y"):
        bilevel.solve(ridge.numpy_problem(data, box=False), "aid-cg",
                      **dict(ridge.AID_CG, iterations=1500, inner_steps=20))


# The vectorised form: one call per oracle for all instances, the same iterates
THREE = dict(ridge.AID_CG, iterations=40, outer_step=[5.0, 10.0, 20.0])
SOBA_TWO = dict(ridge.SOBA, iterations=300, outer_step=[5.0, 2.0])


def test_vectorized_numpy_callbacks_take_the_same_steps(data):
    one, all_ = ridge.numpy_problem(data), ridge.numpy_problem_vectorized(data)
    assert all_.vectorized and not one.vectorized
    for algorithm, options, n in (("aid-cg", THREE, 3), ("soba", SOBA_TWO, 2)):
        a = bilevel.solve(one, algorithm, instances=n, **options)
        b = bilevel.solve(all_, algorithm, instances=n, **options)
        np.testing.assert_allclose(b.x, a.x, rtol=1e-10, atol=1e-12, err_msg=algorithm)
        assert len({tuple(np.round(row, 6)) for row in a.x}) == n  # the instances differ


def test_vectorized_jax_problem_takes_the_same_steps(data):
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    with jax.enable_x64(True):
        a = bilevel.solve(ridge.jax_ridge_problem(data), "soba", instances=2, **SOBA_TWO)
        b = bilevel.solve(ridge.jax_ridge_problem(data, vectorized=True), "soba", instances=2,
                          **SOBA_TWO)
    np.testing.assert_allclose(b.x, a.x, rtol=1e-10, atol=1e-12)


def test_a_vectorized_callback_with_the_wrong_shape_is_named(data):
    d = data["A"].shape[1]
    p = bilevel.CallbackProblem(
        d, d, grad_y_g=lambda X, Y: Y[0], grad_f=lambda X, Y: (np.zeros_like(X), Y),
        hvp_jvp=lambda X, Y, W: (W, W), values=lambda X, Y: (np.zeros(len(X)), np.zeros(len(X))),
        vectorized=True)
    with pytest.raises(ValueError, match=r"grad_y_g must return a 2-D float64 CPU array of "
                                         r"shape \(instances, 12\)"):
        bilevel.solve(p, "stocbio", instances=2, iterations=2)
    p = bilevel.CallbackProblem(
        d, d, grad_y_g=lambda X, Y: Y, grad_f=lambda X, Y: (np.zeros_like(X), Y),
        hvp_jvp=lambda X, Y, W: (W, W), values=lambda X, Y: (0.0, 0.0), vectorized=True)
    with pytest.raises(ValueError, match=r"values \(f\) must be a 1-D float64 array of one "
                                         r"number per instance"):
        bilevel.solve(p, "stocbio", instances=2, iterations=2)
