"""What the benchopt comparison scripts share: loading the benchmark's modules from a checkout,
running `bilevel` until its own clock passes a budget, the median table and curves, and the
CPU's name. Run alone, it redraws a results folder's curves.png from its runs.jsonl."""
import importlib.util
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def load(path, name):
    """The module at `path` (a file of the benchmark checkout), imported as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli_for(cmd, metrics, seconds, grace):
    """Runs `cmd` (which writes JSON-lines metrics to `metrics`) until its last line's
    "seconds" reaches `seconds` (or `seconds + grace` of wall clock pass), stops it, and
    returns its evaluation lines (the summary left out): the curve so far."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + seconds + grace
    while p.poll() is None and time.time() < deadline:
        time.sleep(0.5)
        if metrics.exists():
            lines = metrics.read_text().splitlines()
            if lines and json.loads(lines[-1]).get("seconds", 0) >= seconds:
                break
    p.kill()
    p.wait()
    if not metrics.exists():
        return []
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [m for m in rows if "summary" not in m]


def median_table(rows, metric, label, times, thresholds, value_format, threshold_format):
    """One line per (side, solver): the median over its seeds of the best `metric` seen by each
    of `times` (seconds), then of the time at which it first reached each of `thresholds`."""
    keys = sorted({(r["side"], r["solver"]) for r in rows})
    out = ["| side | solver | " + " | ".join(f"{label} at {t:g} s" for t in times) + " | " +
           " | ".join(f"time to {e:{threshold_format}}" for e in thresholds) + " |",
           "|---|---|" + "---|" * (len(times) + len(thresholds))]
    for side, solver in keys:
        seeds = sorted({r["seed"] for r in rows if (r["side"], r["solver"]) == (side, solver)})
        at, reach = [], []
        for s in seeds:
            curve = sorted((r["seconds"], r[metric]) for r in rows
                           if (r["side"], r["solver"], r["seed"]) == (side, solver, s))
            at.append([min([v for t, v in curve if t <= limit] or [float("nan")]) for limit in times])
            reach.append([next((t for t, v in curve if v <= th), float("inf")) for th in thresholds])
        med = statistics.median
        cells = [f"{med([a[k] for a in at]):{value_format}}" for k in range(len(times))]
        cells += [(lambda v: "not reached" if v == float("inf") else f"{v:.2f} s")(med([r[k] for r in reach]))
                  for k in range(len(thresholds))]
        out.append(f"| {side} | {solver} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def median_curves(rows, metric, points=200):
    """(side, solver) -> [(t, median over seeds of the best `metric` seen by time t)], on a grid
    of `points` times up to the shortest seed's last evaluation (so every seed counts)."""
    curves = {}
    for key in sorted({(r["side"], r["solver"]) for r in rows}):
        seeds = sorted({r["seed"] for r in rows if (r["side"], r["solver"]) == key})
        per_seed = [sorted((r["seconds"], r[metric]) for r in rows
                           if (r["side"], r["solver"], r["seed"]) == (*key, s)) for s in seeds]
        end = min(c[-1][0] for c in per_seed)
        start = max(c[0][0] for c in per_seed)
        grid = [start + (end - start) * k / (points - 1) for k in range(points)]
        curves[key] = [(t, statistics.median(min(v for s, v in c if s <= t) for c in per_seed))
                       for t in grid]
    return curves


def plot_curves(rows, metric, ylabel, title, out_png, log_y=False, y_range=None):
    """The median curves (median_curves) of every (side, solver) as one PNG, drawn by gnuplot
    (run without a shell; the data go through files, never through the script's text)."""
    curves = median_curves(rows, metric)
    out_png = Path(out_png).resolve()
    # the labels are ours (side and solver names from this script), quoted for gnuplot
    quote = lambda s: "'" + s.replace("'", "''") + "'"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "curves.dat"
        names = []
        with open(data, "w") as f:
            for (side, solver), curve in curves.items():
                names.append(f"{side} {solver}")
                for t, v in curve:
                    f.write(f"{t:.6g} {v:.9g}\n")
                f.write("\n\n")
        lines = ["set terminal pngcairo size 900,560 font ',11'",
                 f"set output {quote(str(out_png))}",
                 f"set title {quote(title)}", "set xlabel 'wall clock (s)'",
                 f"set ylabel {quote(ylabel)}", "set key outside right", "set grid"]
        if log_y:
            lines.append("set logscale y")
        if y_range:
            lines.append(f"set yrange [{float(y_range[0])}:{float(y_range[1])}]")
        plots = [f"{quote(str(data))} index {i} with lines lw 2 title {quote(n)}"
                 for i, n in enumerate(names)]
        lines.append("plot " + ", ".join(plots))
        script = Path(tmp) / "curves.gp"
        script.write_text("\n".join(lines) + "\n")
        subprocess.run(["gnuplot", str(script)], check=True)
    return out_png


# what each comparison plots: the metric, its label, a log scale, the y range
PLOTS = {"datacleaning": ("test_error", "test error, median of the seeds", False, (0.215, 0.30)),
         "quadratics": ("value", "||grad F(x)||^2, median of the seeds", True, None)}


def plot_runs(folder, problem):
    """folder/curves.png from folder/runs.jsonl (a comparison's runs), or a line saying why not."""
    folder = Path(folder)
    rows = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]
    metric, label, log_y, y_range = PLOTS[problem]
    try:
        out = plot_curves(rows, metric, label, f"benchopt {problem}: median curves ({folder.name})",
                          folder / "curves.png", log_y=log_y, y_range=y_range)
        print(f"wrote {out}")
    except FileNotFoundError:
        print("no gnuplot: no curves.png (apt-get install gnuplot-nox)")


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 3 or sys.argv[2] not in PLOTS:
        raise SystemExit("usage: benchopt_common.py RESULTS_FOLDER datacleaning|quadratics "
                         "(redraws RESULTS_FOLDER/curves.png from its runs.jsonl)")
    plot_runs(sys.argv[1], sys.argv[2])
