#!/usr/bin/env python3
"""The table of the scale study (scripts/scale_study.sh): one row per run, from the summary line
of each metrics file (OUT_DIR/SCALE-ALGO.jsonl) and its wall time (OUT_DIR/SCALE-ALGO.wall).

Usage: scale_study_table.py OUT_DIR  (prints Markdown, headed by OUT_DIR/machine.txt)"""
import json
import pathlib
import re
import sys

SCALES = ["fmnist20k", "fmnist50k", "synth2e5", "synth1e6"]
ALGOS = ["soba", "stocbio", "ma-soba", "bo-rep", "amigo"]


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def baselines_from_log(path):
    """(plain, oracle) test accuracies from the run's header line, or (None, None)."""
    m = re.search(r"baselines \(\d+ SGD steps\): plain ([0-9.]+)% .*oracle ([0-9.]+)%",
                  path.read_text(errors="replace")) if path.exists() else None
    return (float(m.group(1)) / 100, float(m.group(2)) / 100) if m else (None, None)


def main():
    out = pathlib.Path(sys.argv[1])
    # the machine the numbers come from (scale_study.sh writes machine.txt before the runs)
    machine = out / "machine.txt"
    if machine.exists():
        print("Machine (CPU; no GPU):\n")
        for line in machine.read_text().splitlines():
            print("    " + line)
        print()
    print("| scale | preset | test acc | oracle | plain | F1 | on the line | time to quality "
          "(iterations / end to end) | run | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scale in SCALES:
        for algo in ALGOS:
            path = out / f"{scale}-{algo}.jsonl"
            if not path.exists():
                continue
            runs = lines(path)
            s = runs[-1] if runs and runs[-1].get("summary") else None
            pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"
            if s is None:
                # a run stopped before its end: its last evaluation, said as such
                plain, oracle = baselines_from_log(out / f"{scale}-{algo}.txt")
                if not runs:
                    print(f"| {scale} | {algo} | no evaluation (see {path.stem}.txt) | | | | | | | |")
                    continue
                e = runs[-1]
                print(f"| {scale} | {algo} | {pct(e['test_accuracy'][0])} | {pct(oracle)} | "
                      f"{pct(plain)} | {e['f1'][0]:.3f} | stopped at it. {e['iteration']} | | "
                      f"{e['iteration']} it, {e['seconds']:.1f} s | |")
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
            print(f"| {scale} | {algo} | {pct(acc)} | {pct(oracle)} | {pct(plain)} | {f1:.3f} | "
                  f"{'yes' if on_line else 'no'} | {ttq_text} | {s['iterations']} it, "
                  f"{s['seconds']:.1f} s | {wall} s |")


if __name__ == "__main__":
    main()
