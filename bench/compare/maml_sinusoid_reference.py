#!/usr/bin/env python3
"""The reference run of `bilevel meta` on sinusoids, written in PyTorch the way a PyTorch user
writes MAML (autograd through the adaptation step, create_graph=True), for issue #12's target
"post-adaptation MSE equal to our own PyTorch reference run with the same seeds within noise".

Same protocol as `bilevel meta --task sinusoid` with its defaults: MLP 1-40-40-1 (ReLU,
Glorot-uniform weights, zero biases), tasks with amplitude in [0.1, 5], phase in [0, pi],
inputs in [-5, 5], K = 10 support and 10 query points, squared error averaged over the points,
meta-batch 25, one adaptation step of 0.01, the meta-gradient averaged over the tasks, the
meta step x -= 0.05 m with m = 0.1 g + 0.9 m (the `average` update), float32; then 600 new
tasks, one adaptation step, the query MSE with a 95% interval (1.96 s / sqrt(n)).
`--algo pretrain` trains one network on the query loss without adaptation (the baseline).

The seeds seed PyTorch's generator, not our Philox streams: the task draws differ, so runs are
compared over several seeds (the spread between seeds is the noise). Prints one JSON line per
seed.

  python3 bench/compare/maml_sinusoid_reference.py --algo maml --seeds 0 1 2
"""
import argparse
import json
import math
import time

import torch

WIDTHS = [1, 40, 40, 1]


def init(gen):
    params = []
    for i, o in zip(WIDTHS[:-1], WIDTHS[1:]):
        r = math.sqrt(6.0 / (i + o))
        w = (torch.rand(o, i, generator=gen) * 2 - 1) * r
        params += [w.requires_grad_(), torch.zeros(o, requires_grad=True)]
    return params


def tasks(gen, count, shots, query):
    """count tasks: support (xs, ys) and query (xq, yq) points, each (count, points, 1)."""
    amp = 0.1 + 4.9 * torch.rand(count, 1, 1, generator=gen)
    phase = math.pi * torch.rand(count, 1, 1, generator=gen)
    xs = -5 + 10 * torch.rand(count, shots, 1, generator=gen)
    xq = -5 + 10 * torch.rand(count, query, 1, generator=gen)
    return xs, amp * torch.sin(xs - phase), xq, amp * torch.sin(xq - phase)


def forward(params, x):
    """x: (B, n, 1); params: per-task (B, ...) tensors."""
    h = x
    layers = len(params) // 2
    for l in range(layers):
        w, b = params[2 * l], params[2 * l + 1]
        h = torch.bmm(h, w.transpose(1, 2)) + b.unsqueeze(1)
        if l + 1 < layers:
            h = torch.relu(h)
    return h


def task_losses(params, x, y):
    return ((forward(params, x) - y) ** 2).mean(dim=(1, 2))  # (B,)


def adapt(params, x, y, alpha, steps, create_graph):
    for _ in range(steps):
        grads = torch.autograd.grad(task_losses(params, x, y).sum(), params,
                                    create_graph=create_graph)
        params = [p - alpha * g for p, g in zip(params, grads)]
    return params


def run(args, seed):
    gen = torch.Generator().manual_seed(seed)
    theta = init(gen)
    m = [torch.zeros_like(p) for p in theta]
    start = time.time()
    for _ in range(args.iters):
        xs, ys, xq, yq = tasks(gen, args.meta_batch, args.shots, args.query)
        batch = [p.unsqueeze(0).repeat(args.meta_batch, *([1] * p.dim())) for p in theta]
        if args.algo == "maml":
            phi = adapt(batch, xs, ys, args.inner_step, args.inner_steps, create_graph=True)
        else:  # pretrain: no adaptation in training
            phi = batch
        loss = task_losses(phi, xq, yq).mean()
        grads = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            for p, mp, g in zip(theta, m, grads):
                mp.mul_(1 - args.average).add_(g, alpha=args.average)
                p.sub_(args.outer_step * mp)
    seconds = time.time() - start
    # meta-test on new tasks (another generator)
    test_gen = torch.Generator().manual_seed(10_000 + seed)
    xs, ys, xq, yq = tasks(test_gen, args.test_tasks, args.shots, args.query)
    batch = [p.detach().unsqueeze(0).repeat(args.test_tasks, *([1] * p.dim())).requires_grad_()
             for p in theta]
    before = task_losses(batch, xq, yq).detach()
    phi = adapt(batch, xs, ys, args.inner_step, max(args.inner_steps, 1), create_graph=False)
    after = task_losses(phi, xq, yq).detach()
    n = after.numel()
    return {"framework": "pytorch", "version": torch.__version__, "algo": args.algo, "seed": seed,
            "iterations": args.iters, "seconds": seconds,
            "test_loss_before_adaptation": before.mean().item(),
            "test_loss_after_adaptation": after.mean().item(),
            "test_loss_interval95": 1.96 * after.std().item() / math.sqrt(n)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--algo", choices=["maml", "pretrain"], default="maml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iters", type=int, default=10000)
    ap.add_argument("--meta-batch", type=int, default=25)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--query", type=int, default=10)
    ap.add_argument("--inner-steps", type=int, default=1)
    ap.add_argument("--inner-step", type=float, default=0.01)
    ap.add_argument("--outer-step", type=float, default=0.05)
    ap.add_argument("--average", type=float, default=0.1)
    ap.add_argument("--test-tasks", type=int, default=600)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds:
        print(json.dumps(run(args, seed)), flush=True)


if __name__ == "__main__":
    main()
