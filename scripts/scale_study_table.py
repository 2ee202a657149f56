#!/usr/bin/env python3
"""The table of the scale study (scripts/scale_study.sh): one row per run, from the summary line
of each metrics file (OUT_DIR/SCALE-ALGO.jsonl) and its wall time (OUT_DIR/SCALE-ALGO.wall).

Usage: scale_study_table.py OUT_DIR  (prints Markdown)"""
import json
import pathlib
import sys

SCALES = ["fmnist20k", "fmnist50k", "synth2e5", "synth1e6"]
ALGOS = ["soba", "stocbio", "ma-soba", "bo-rep", "amigo"]


def summary(path):
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                last = json.loads(line)
    return last if last and last.get("summary") else None


def main():
    out = pathlib.Path(sys.argv[1])
    print("| scale | preset | test acc | oracle | plain | F1 | on the line | time to quality "
          "(iterations / end to end) | run | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scale in SCALES:
        for algo in ALGOS:
            path = out / f"{scale}-{algo}.jsonl"
            if not path.exists():
                continue
            s = summary(path)
            if s is None:
                print(f"| {scale} | {algo} | no summary (failed or diverged: see {path.stem}.txt) "
                      "| | | | | | | |")
                continue
            wall = (out / f"{scale}-{algo}.wall").read_text().strip()
            base = s.get("baselines", {})
            oracle = base.get("oracle", {}).get("test_accuracy")
            plain = base.get("plain", {}).get("test_accuracy")
            acc, f1 = s["test_accuracy"], s["f1"]
            on_line = f1 >= 0.90 and (oracle is None or acc >= oracle - 0.02)
            ttq = s["time_to_quality_seconds"]
            ttq_text = (f"{ttq:.1f} s / {s['time_to_quality_end_to_end_seconds']:.1f} s "
                        f"(it. {s['time_to_quality_iteration']})" if ttq >= 0 else "not reached")
            pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"
            print(f"| {scale} | {algo} | {pct(acc)} | {pct(oracle)} | {pct(plain)} | {f1:.3f} | "
                  f"{'yes' if on_line else 'no'} | {ttq_text} | {s['iterations']} it, "
                  f"{s['seconds']:.1f} s | {wall} s |")


if __name__ == "__main__":
    main()
