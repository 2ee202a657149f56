#!/usr/bin/env python3
"""A-PARL against reward learning on batched gridworlds (issue #14's target), over seeds.

Runs `bilevel align --env gridworld` for both algorithms and both feedback types, each seed a
different family of gridworlds (5 x 5, goal +1, two traps -1, the first reward at a decoy),
and prints a Markdown table: the final utility ratio (J - J_uniform) / (J* - J_uniform) with its
95% interval over the gridworlds, how many reached 95% of the optimum, and the feedback pairs
they needed (read at the evaluations). Usage:
  python3 bench/compare/gridworld_alignment.py --bin build/release/host/cli/bilevel [--seeds 3]
      [--reward-model state|row-column] [--feedback-types preference,utility]
      [--outer-step S --outer-decay D]   (the step on the reward at iteration k: S (k + 1)^-D)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run(binary, algo, feedback_type, seed, args):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.jsonl")
        cmd = [binary, "align", "--env", "gridworld", "--algo", algo, "--feedback-type",
               feedback_type, "--seed", str(seed), "--instances", str(args.instances),
               "--iters", str(args.iters), "--eval-every", str(args.eval_every),
               "--reward-model", args.reward_model, "--outer-decay", str(args.outer_decay),
               "--backend", args.backend, "--metrics", metrics]
        if args.outer_step > 0:
            cmd += ["--outer-step", str(args.outer_step)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(metrics) as f:
            return [json.loads(line) for line in f][-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/host/cli/bilevel")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--instances", type=int, default=32)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--reward-model", default="state", choices=["state", "row-column"])
    ap.add_argument("--feedback-types", default="preference,utility")
    ap.add_argument("--outer-step", type=float, default=0.0, help="0: the preset's 0.1")
    ap.add_argument("--outer-decay", type=float, default=0.0)
    args = ap.parse_args()
    print(f"| feedback | algorithm | seed | utility ratio (95%) | first reward | reached 95% "
          f"| pairs to 95% (mean of those) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for feedback_type in args.feedback_types.split(","):
        for algo in ("a-parl", "reward-learning"):
            for seed in range(args.seeds):
                s = run(args.bin, algo, feedback_type, seed, args)
                reached = [p for p in s["pairs_to_95_percent"] if p >= 0]
                pairs = f"{statistics.mean(reached):.0f}" if reached else "-"
                first = statistics.mean(s["first_reward_utility_ratio"])
                print(f"| {feedback_type} | {algo} | {seed} | {s['utility_ratio_mean']:.3f} +- "
                      f"{s['utility_ratio_interval']:.3f} | {first:.3f} | {len(reached)}/"
                      f"{s['instances']} | {pairs} | {s['seconds']:.1f} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
