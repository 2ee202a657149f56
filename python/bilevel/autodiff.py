"""Problems written as g and f only: every oracle by JAX's automatic differentiation.

``jax_problem(g, f, dim_x, dim_y)`` returns a :class:`bilevel.CallbackProblem` whose oracles
are jit-compiled JAX functions of your two scalars g(x, y) (lower) and f(x, y) (upper):

- grad_y g = jax.grad(g, 1); grad_x g = jax.grad(g, 0) (the first-order presets' oracle);
  grad f = jax.grad(f, (0, 1));
- H v and J v from one vector-Jacobian product of grad_y g (H is symmetric):
  (H v, J v) = vjp of (y, x) -> grad_y g(x, y), applied to v;
- values = (f(x, y), g(x, y)).

x and y are 1-D arrays. By default g and f see the whole problem. For finite sums, give
``lower_samples`` and ``upper_samples`` (how many samples g and f sum over): g(x, y, idx) and
f(x, y, idx) then receive each minibatch's sample indices (an int64 array; None for a full
pass, e.g. at evaluations) and return the mean over those samples, and ``solve(...,
lower_batch=, upper_batch=)`` draws the minibatches. Precision: JAX computes in float32 unless ``jax_enable_x64`` is set (or the
problem is built inside ``with jax.enable_x64(True):``); the solver's state is float64 either
way. With x64 the results pass to the solver through DLPack without a copy; in float32 they
are widened to float64 (a copy).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._bilevel import CallbackProblem


def jax_problem(g: Callable, f: Callable, dim_x: int, dim_y: int, *, lower_samples: int = 0,
                upper_samples: int = 0, project_x: Callable | None = None,
                project_y: Callable | None = None, vectorized: bool = False) -> CallbackProblem:
    """A problem from JAX functions g and f returning scalars: g(x, y) and f(x, y), or with
    ``lower_samples``/``upper_samples`` g(x, y, idx) and f(x, y, idx) (see the module
    docstring). ``project_x``/``project_y``: as CallbackProblem's (one instance's vector in,
    the projected one out; NumPy, applied after every step). ``vectorized``: every oracle is
    ``jax.vmap``-ed over the instances and called once for all of them (the projections then
    get (B, dim) arrays too): B instances cost about one call instead of B. Raises ImportError
    when JAX is not installed."""
    import jax

    sampled = lower_samples > 0 or upper_samples > 0
    if not sampled:
        g2, f2 = (lambda x, y, idx: g(x, y)), (lambda x, y, idx: f(x, y))
    else:
        g2, f2 = g, f
    grad_y = jax.grad(g2, argnums=1)

    def hvp_jvp_one(x, y, v, idx):
        _, vjp = jax.vjp(lambda y_, x_: grad_y(x_, y_, idx), y, x)
        return vjp(v)  # (H v, J v)

    def compiled(fn, points, index_args=1):
        # jit-compiled, for one instance's vectors, or (vectorized) vmapped over the rows of the
        # `points` (B, dim) arguments with the sample indices shared: one call for all instances
        if vectorized:
            fn = jax.vmap(fn, in_axes=(0,) * points + (None,) * index_args)
        return jax.jit(fn)

    grad_y_g = compiled(grad_y, 2)
    grad_x_g = compiled(jax.grad(g2, argnums=0), 2)
    grad_f = compiled(jax.grad(f2, argnums=(0, 1)), 2)
    hvp_jvp = compiled(hvp_jvp_one, 3)
    values = compiled(lambda x, y, lower, upper: (f2(x, y, upper), g2(x, y, lower)), 2, 2)

    def out(a):
        # float64 JAX arrays go through DLPack as they are; float32 ones are widened
        return a if a.dtype == np.float64 else np.asarray(a, dtype=np.float64)

    # values returns one number each for f and g, or (vectorized) an array of B numbers each
    number = out if vectorized else float
    common = dict(project_x=project_x, project_y=project_y, vectorized=vectorized)
    if not sampled:
        return CallbackProblem(
            int(dim_x), int(dim_y),
            grad_y_g=lambda x, y: out(grad_y_g(x, y, None)),
            grad_f=lambda x, y: tuple(out(a) for a in grad_f(x, y, None)),
            hvp_jvp=lambda x, y, v: tuple(out(a) for a in hvp_jvp(x, y, v, None)),
            values=lambda x, y: tuple(number(a) for a in values(x, y, None, None)),
            grad_x_g=lambda x, y: out(grad_x_g(x, y, None)), **common)
    return CallbackProblem(
        int(dim_x), int(dim_y),
        grad_y_g=lambda x, y, idx: out(grad_y_g(x, y, idx)),
        grad_f=lambda x, y, idx: tuple(out(a) for a in grad_f(x, y, idx)),
        hvp_jvp=lambda x, y, v, idx: tuple(out(a) for a in hvp_jvp(x, y, v, idx)),
        values=lambda x, y, lower, upper: tuple(number(a) for a in values(x, y, lower, upper)),
        lower_samples=int(lower_samples), upper_samples=int(upper_samples),
        grad_x_g=lambda x, y, idx: out(grad_x_g(x, y, idx)), **common)
