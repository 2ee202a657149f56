#!/usr/bin/env python3
"""MAML on sinusoid tasks in JAX, the way a JAX user writes it: jax.grad through the D
adaptation steps, jax.vmap over the tasks of a meta-batch, the whole run one jit-compiled
lax.fori_loop with the tasks drawn inside it. Same case as bench_meta's meta_iteration_maml:
MLP 1-40-40-40-1 (ReLU), K = 10 support and 10 query points, amplitude in [0.1, 5], phase in
[0, pi], inputs in [-5, 5], alpha = 0.01, SGD meta-step 0.01, float32.

Compiles and runs once (warm-up), then one timed run of --iters meta-iterations; prints one
JSON object per meta-batch size.
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
from jax import lax

WIDTHS = [1, 40, 40, 40, 1]
K = Q = 10


def init(key):
    params = []
    for i, o in zip(WIDTHS[:-1], WIDTHS[1:]):
        key, sub = jax.random.split(key)
        r = (6.0 / (i + o)) ** 0.5
        params.append((jax.random.uniform(sub, (i, o), minval=-r, maxval=r), jnp.zeros(o)))
    return params


def net(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def loss(params, x, y):
    return jnp.mean((net(params, x) - y) ** 2)


def sample_task(key):
    ka, kp, kx = jax.random.split(key, 3)
    a = jax.random.uniform(ka, minval=0.1, maxval=5.0)
    p = jax.random.uniform(kp, minval=0.0, maxval=jnp.pi)
    x = jax.random.uniform(kx, (K + Q, 1), minval=-5.0, maxval=5.0)
    y = a * jnp.sin(x - p)
    return x[:K], y[:K], x[K:], y[K:]


def make_run(meta_batch, steps, alpha, beta, order):
    def adapt(params, xs, ys):
        for _ in range(steps):
            g = jax.grad(loss)(params, xs, ys)
            if order == 1:
                g = jax.lax.stop_gradient(g)
            params = jax.tree_util.tree_map(lambda p, d: p - alpha * d, params, g)
        return params

    def task_loss(params, task):
        xs, ys, xq, yq = task
        return loss(adapt(params, xs, ys), xq, yq)

    def meta_loss(params, tasks):
        return jnp.mean(jax.vmap(task_loss, in_axes=(None, 0))(params, tasks))

    @jax.jit
    def run(params, key, iters):
        def body(i, carry):
            params, key = carry
            key, sub = jax.random.split(key)
            tasks = jax.vmap(sample_task)(jax.random.split(sub, meta_batch))
            g = jax.grad(meta_loss)(params, tasks)
            params = jax.tree_util.tree_map(lambda p, d: p - beta * d, params, g)
            return params, key

        return lax.fori_loop(0, iters, body, (params, key))

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--meta-batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--inner-steps", type=int, default=5)
    ap.add_argument("--first-order", action="store_true")
    args = ap.parse_args()
    for mb in args.meta_batch:
        run = make_run(mb, args.inner_steps, 0.01, 0.01, 1 if args.first_order else 2)
        params = init(jax.random.PRNGKey(0))
        key = jax.random.PRNGKey(1)
        jax.block_until_ready(run(params, key, args.iters))  # compile + warm-up
        t0 = time.perf_counter()
        out = run(params, key, args.iters)
        jax.block_until_ready(out)
        dt = time.perf_counter() - t0
        print(json.dumps({"framework": "jax", "version": jax.__version__,
                          "device": str(jax.devices()[0]),
                          "case": "fomaml" if args.first_order else "maml",
                          "meta_batch": mb, "inner_steps": args.inner_steps,
                          "iterations": args.iters,
                          "us_per_iteration": 1e6 * dt / args.iters}), flush=True)


if __name__ == "__main__":
    main()
