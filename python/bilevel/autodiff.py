"""Problems written as g and f only: every oracle by JAX's automatic differentiation.

``jax_problem(g, f, dim_x, dim_y)`` returns a :class:`bilevel.CallbackProblem` whose oracles
are jit-compiled JAX functions of your two scalars g(x, y) (lower) and f(x, y) (upper):

- grad_y g = jax.grad(g, 1); grad f = jax.grad(f, (0, 1));
- H v and J v from one vector-Jacobian product of grad_y g (H is symmetric):
  (H v, J v) = vjp of (y, x) -> grad_y g(x, y), applied to v;
- values = (f(x, y), g(x, y)).

x and y are 1-D arrays; g and f see the whole problem (full batches: the callbacks receive no
minibatch indices). Precision: JAX computes in float32 unless ``jax_enable_x64`` is set (or the
problem is built inside ``with jax.enable_x64(True):``); the solver's state is float64 either
way. With x64 the results pass to the solver through DLPack without a copy; in float32 they
are widened to float64 (a copy).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._bilevel import CallbackProblem


def jax_problem(g: Callable, f: Callable, dim_x: int, dim_y: int) -> CallbackProblem:
    """A problem from JAX functions g(x, y) and f(x, y) returning scalars: see the module
    docstring. Raises ImportError when JAX is not installed."""
    import jax

    grad_y = jax.grad(g, argnums=1)
    grad_y_g = jax.jit(grad_y)
    grad_f = jax.jit(jax.grad(f, argnums=(0, 1)))

    @jax.jit
    def hvp_jvp(x, y, v):
        _, vjp = jax.vjp(lambda y_, x_: grad_y(x_, y_), y, x)
        return vjp(v)  # (H v, J v)

    values = jax.jit(lambda x, y: (f(x, y), g(x, y)))

    def out(a):
        # float64 JAX arrays go through DLPack as they are; float32 ones are widened
        return a if a.dtype == np.float64 else np.asarray(a, dtype=np.float64)

    return CallbackProblem(
        int(dim_x), int(dim_y),
        grad_y_g=lambda x, y: out(grad_y_g(x, y)),
        grad_f=lambda x, y: tuple(out(a) for a in grad_f(x, y)),
        hvp_jvp=lambda x, y, v: tuple(out(a) for a in hvp_jvp(x, y, v)),
        values=lambda x, y: tuple(float(a) for a in values(x, y)))
