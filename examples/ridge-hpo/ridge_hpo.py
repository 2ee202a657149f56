"""Hyperparameter optimisation of ridge regression with one L2 weight per feature, from Python,
checked against its closed form (docs/your-own-problem.md; main.cpp beside this file is the
same problem in C++):

    lower  g(x, y) = 1/(2s) ||A_S y - b_S||^2 + 1/2 sum_j exp(x_j) y_j^2   (training loss, batch S)
    upper  f(x, y) = 1/(2m) ||V y - c||^2                                  (validation loss)

with x in the box [-4, 2] (the L2 weights e^x stay bounded, and so does g's curvature).
On the full data: H = A'A/n + diag(e^x), y*(x) = H^{-1} A'b/n and
grad F(x) = -e^x * y* * v with v = H^{-1} V'(V y* - c)/m.

The problem twice: as NumPy callbacks written by hand (`numpy_problem`), and as g and f alone
with every oracle from JAX's autodiff (`jax_ridge_problem`). Run this file to see both solved;
python/tests/test_ridge_hpo.py asserts what it prints.
"""
from __future__ import annotations

import numpy as np

import bilevel

X_MIN, X_MAX = -4.0, 2.0


def make_data(n=400, m=200, d=12, seed=7):
    """Targets from a sparse true weight vector plus noise: (A, b) training, (V, c) validation."""
    rng = np.random.default_rng(seed)
    w = np.where(np.arange(d) % 3 == 0, rng.normal(size=d), 0.0)
    A, V = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    return dict(A=A, b=A @ w + 0.5 * rng.normal(size=n), V=V, c=V @ w + 0.5 * rng.normal(size=m))


def closed_form(data, x):
    """y*(x), grad F(x) and F(x) = f(x, y*(x)) on the full data."""
    A, b, V, c = data["A"], data["b"], data["V"], data["c"]
    H = A.T @ A / len(b) + np.diag(np.exp(x))
    y_star = np.linalg.solve(H, A.T @ b / len(b))
    v = np.linalg.solve(H, V.T @ (V @ y_star - c) / len(c))
    return y_star, -np.exp(x) * y_star * v, 0.5 * np.mean((V @ y_star - c) ** 2)


def projected_gradient_descent(data, x0, step, iterations):
    """The reference: x <- clip(x - step grad F(x)) with the exact hypergradient."""
    x = np.array(x0, dtype=float)
    for _ in range(iterations):
        x = np.clip(x - step * closed_form(data, x)[1], X_MIN, X_MAX)
    return x


def numpy_problem(data, box=True):
    """Every oracle by hand, one instance per call; g is a mean over the n training rows, so
    the callbacks take the minibatch's row indices (None: all rows). ``box``: x projected onto
    [X_MIN, X_MAX] after every step."""
    A, b, V, c = data["A"], data["b"], data["V"], data["c"]
    rows = lambda idx: (A, b) if idx is None else (A[idx], b[idx])

    def grad_y_g(x, y, idx):
        a, t = rows(idx)
        return a.T @ (a @ y - t) / len(t) + np.exp(x) * y

    def grad_f(x, y, idx):  # f reads neither x nor the upper batch
        return np.zeros_like(x), V.T @ (V @ y - c) / len(c)

    def hvp_jvp(x, y, v, idx):  # H v, J v
        a, _ = rows(idx)
        return a.T @ (a @ v) / len(a) + np.exp(x) * v, np.exp(x) * y * v

    def values(x, y, lower, upper):  # (f, g)
        a, t = rows(lower)
        g = 0.5 * np.mean((a @ y - t) ** 2) + 0.5 * np.sum(np.exp(x) * y ** 2)
        return 0.5 * np.mean((V @ y - c) ** 2), g

    return bilevel.CallbackProblem(
        A.shape[1], A.shape[1], grad_y_g=grad_y_g, grad_f=grad_f, hvp_jvp=hvp_jvp, values=values,
        lower_samples=len(b), upper_samples=len(c),
        grad_x_g=lambda x, y, idx: 0.5 * np.exp(x) * y ** 2,
        project_x=(lambda x: np.clip(x, X_MIN, X_MAX)) if box else None)


def numpy_problem_vectorized(data, box=True):
    """The same oracles for all B instances in one call (``vectorized=True``): x, y and v
    arrive as (B, d) arrays, one row per instance, and every result is (B, d); values returns
    B numbers for f and for g. One call per oracle instead of B."""
    A, b, V, c = data["A"], data["b"], data["V"], data["c"]
    rows = lambda idx: (A, b) if idx is None else (A[idx], b[idx])

    def grad_y_g(X, Y, idx):
        a, t = rows(idx)
        return (a.T @ (a @ Y.T - t[:, None])).T / len(t) + np.exp(X) * Y

    def grad_f(X, Y, idx):
        return np.zeros_like(X), (V.T @ (V @ Y.T - c[:, None])).T / len(c)

    def hvp_jvp(X, Y, W, idx):
        a, _ = rows(idx)
        return (a.T @ (a @ W.T)).T / len(a) + np.exp(X) * W, np.exp(X) * Y * W

    def values(X, Y, lower, upper):
        a, t = rows(lower)
        g = 0.5 * np.mean((a @ Y.T - t[:, None]) ** 2, axis=0) + 0.5 * np.sum(np.exp(X) * Y ** 2, axis=1)
        return 0.5 * np.mean((V @ Y.T - c[:, None]) ** 2, axis=0), g

    return bilevel.CallbackProblem(
        A.shape[1], A.shape[1], grad_y_g=grad_y_g, grad_f=grad_f, hvp_jvp=hvp_jvp, values=values,
        lower_samples=len(b), upper_samples=len(c),
        grad_x_g=lambda X, Y, idx: 0.5 * np.exp(X) * Y ** 2,
        project_x=(lambda X: np.clip(X, X_MIN, X_MAX)) if box else None, vectorized=True)


def jax_ridge_problem(data, vectorized=False):
    """g and f only, as JAX functions: grad_y g, grad f, H v and J v come from autodiff. Build
    it inside ``with jax.enable_x64(True):`` for float64 oracles. ``vectorized``: the oracles
    are vmapped over the instances, one call for all of them."""
    import jax.numpy as jnp
    A, b, V, c = (jnp.asarray(data[k]) for k in ("A", "b", "V", "c"))

    def g(x, y, idx):
        a, t = (A, b) if idx is None else (A[idx], b[idx])
        return 0.5 * jnp.mean((a @ y - t) ** 2) + 0.5 * jnp.sum(jnp.exp(x) * y ** 2)

    def f(x, y, idx):
        return 0.5 * jnp.mean((V @ y - c) ** 2)

    d = A.shape[1]
    return bilevel.jax_problem(g, f, d, d, lower_samples=A.shape[0], upper_samples=V.shape[0],
                               project_x=lambda x: np.clip(x, X_MIN, X_MAX), vectorized=vectorized)


# The runs main() prints and the tests assert: AID-CG on full batches follows exact projected
# gradient descent (same step, same iterations); SOBA on minibatches of 32 rows gets within 1%
# of the smallest validation loss.
AID_CG = dict(iterations=150, inner_steps=200, inner_step=0.1, outer_step=20.0, cg_iterations=12)
SOBA = dict(iterations=3000, lower_batch=32, inner_step=0.1, fixed_point_nu=0.1, outer_step=5.0)


def main():
    data = make_data()
    d = data["A"].shape[1]
    x0 = np.zeros(d)
    x_gd = projected_gradient_descent(data, x0, AID_CG["outer_step"], AID_CG["iterations"])
    F_min = closed_form(data, projected_gradient_descent(data, x0, 20.0, 2000))[2]
    problems = [("NumPy callbacks", numpy_problem(data))]
    try:
        import jax
        with jax.enable_x64(True):
            problems.append(("JAX g and f only", jax_ridge_problem(data)))
            _run(problems, data, x0, x_gd, F_min)
    except ImportError:
        print("(JAX is not installed: the g-and-f-only problem is left out)")
        _run(problems, data, x0, x_gd, F_min)


def _run(problems, data, x0, x_gd, F_min):
    import time
    y_star, grad_F, F0 = closed_form(data, x0)
    for label, p in problems:
        report = bilevel.check_oracles(p, np.full(len(x0), 0.3), 0.1 * np.ones(len(x0)))
        h = bilevel.hypergradient(p, x0, y_star)[0]
        t = time.perf_counter()
        aid = bilevel.solve(p, "aid-cg", **AID_CG)
        soba = bilevel.solve(p, "soba", **SOBA)
        print(f"{label}: oracles {'ok' if report['passed'] else 'WRONG'}; "
              f"max |h - grad F| at y*(x0) = {np.max(np.abs(h - grad_F)):.1e}; "
              f"AID-CG max |x - x_GD| = {np.max(np.abs(aid.x[0] - x_gd)):.1e}; "
              f"SOBA F(x) = {closed_form(data, soba.x[0])[2]:.6f} "
              f"(min F {F_min:.6f}, F(x0) {F0:.6f}); {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
