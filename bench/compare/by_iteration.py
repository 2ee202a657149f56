#!/usr/bin/env python3
"""Test error against iterations from benchopt_datacleaning.py's runs.jsonl files: for each
(side, solver), the median over the seeds of each seed's median error within windows of
--window iterations, with the seeds' range. Compares solvers that run at very different speeds
(benchopt's SABA does 150 iterations a second, ours thousands) at the same iteration counts.

  python3 bench/compare/by_iteration.py DIR/runs.jsonl [MORE.jsonl ...] --window 8192 \
      --machine "2-core AMD EPYC (Zen 4) VM"

--machine names where the runs ran (runs.jsonl does not record it; benchopt_datacleaning.py's
table.md does): the table's first line says it, with the files.
"""
import argparse
import json
import statistics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="runs.jsonl files (rows with an 'iteration')")
    ap.add_argument("--window", type=int, default=8192)
    ap.add_argument("--machine", required=True, help="the machine the runs ran on (CPU model)")
    args = ap.parse_args()
    rows = [json.loads(line) for path in args.runs for line in open(path) if line.strip()]
    rows = [r for r in rows if r.get("iteration") is not None]
    keys = sorted({(r["side"], r["solver"]) for r in rows})
    seeds = {k: sorted({r["seed"] for r in rows if (r["side"], r["solver"]) == k}) for k in keys}
    last = max(r["iteration"] for r in rows)
    print(f"Test error by iterations, runs on {args.machine} ({', '.join(args.runs)}): median over "
          f"the seeds of each seed's median in windows of {args.window} iterations (seeds' range)\n")
    print("| iterations | " + " | ".join(f"{s} {n} ({len(seeds[(s, n)])} seeds)" for s, n in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for lo in range(0, last, args.window):
        cells = []
        for key in keys:
            per_seed = []
            for seed in seeds[key]:
                w = [r["test_error"] for r in rows if (r["side"], r["solver"]) == key
                     and r["seed"] == seed and lo < r["iteration"] <= lo + args.window]
                if w:
                    per_seed.append(statistics.median(w))
            cells.append(f"{statistics.median(per_seed):.4f} ({min(per_seed):.3f}-{max(per_seed):.3f})"
                         if len(per_seed) == len(seeds[key]) else "-")
        print(f"| {lo + 1}-{lo + args.window} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
