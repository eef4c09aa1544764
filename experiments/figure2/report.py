#!/usr/bin/python3
"""report.py - Figure 2's PNG and table from the runs' metrics.jsonl and the paper's CSVs.

    /usr/bin/python3 experiments/figure2/report.py --runs WORK/runs --paper experiments/figure2/paper \\
        --png figure2.png --md figure2.md [--steps N] [--timings WORK/timings.txt]

RUNS holds one folder per run, named KIND-VARIANT-sSEED (KIND bt for bert-train, torch for
torch_mlm.py), each with a metrics.jsonl whose rows carry "step" and, at evaluations,
"eval_loss".  A run whose last row is not --steps is reported as unfinished; its evaluations
up to there are used (table cells say how many seeds they hold when fewer than all).

Left panel: eval loss against updates, per trainer and variant the mean over seeds as a line
and the min-max over seeds as a band.  Right panel: the paper's logged eval loss of BERT-small
and BERT-base (data row n of the CSVs is update 250 n; see paper/README.md).

The table (Markdown): eval loss at every eval step per trainer and variant (mean and min-max
over seeds); the plateau value and the plateau-exit step per variant; bert-train beside
PyTorch at each eval step, and whether their min-max ranges overlap.

Plateau value P of a curve: its eval loss at the first evaluation at or after the end of the
warm-up (when the rate peaks; by then the loss has fallen from ln(vocab) to the level of
predicting from token frequencies, and it creeps down slowly until attention starts to be
used).  Plateau-exit step: the first update at which the eval loss is --drop (1.0) below P,
interpolated linearly between the two evaluations around the crossing ("-" if the run never
gets there).  The same definition is applied to the paper's curves (warm-up 10,000).
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VARIANTS = ["original", "symmetric", "pairwise"]
KINDS = {"bt": "bert-train", "torch": "PyTorch"}
COLOURS = {"original": "#d62728", "symmetric": "#1f77b4", "pairwise": "#2ca02c"}
RUN_NAME = re.compile(r"^(bt|torch)-(original|symmetric|pairwise)-s(\d+)$")


class ReportError(Exception):
    pass


def read_metrics(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                raise ReportError("%s:%d: not JSON (%s)" % (path, n, e))
            if not isinstance(r, dict) or not isinstance(r.get("step"), int):
                raise ReportError("%s:%d: a row without an integer \"step\"" % (path, n))
            rows.append(r)
    return rows


def load_runs(runs_dir, steps):
    """{(kind, variant): {seed: [(step, eval_loss)]}} and the set of (kind, variant, seed) not finished."""
    out, unfinished = {}, set()
    if not os.path.isdir(runs_dir):
        raise ReportError("%s: no such folder" % runs_dir)
    for name in sorted(os.listdir(runs_dir)):
        m = RUN_NAME.match(name)
        path = os.path.join(runs_dir, name, "metrics.jsonl")
        if not m or not os.path.isfile(path):
            continue
        rows = read_metrics(path)
        ev = [(r["step"], float(r["eval_loss"])) for r in rows if r.get("eval_loss") is not None]
        if not ev:
            continue
        key, seed = (m.group(1), m.group(2)), int(m.group(3))
        out.setdefault(key, {})[seed] = ev
        if steps and rows[-1]["step"] != steps:
            unfinished.add((key[0], key[1], seed, rows[-1]["step"]))
    if not out:
        raise ReportError("%s: no runs with evaluations (folders KIND-VARIANT-sSEED with metrics.jsonl)" % runs_dir)
    return out, unfinished


def plateau_exit(curve, warmup, drop):
    """(P, exit step or None) of a [(step, loss)] curve; see the file's header."""
    after = [(s, l) for s, l in curve if s >= warmup]
    if not after:
        return None, None
    p = after[0][1]
    target = p - drop
    prev = after[0]
    for s, l in after[1:]:
        if l <= target:
            s0, l0 = prev
            return p, s0 + (s - s0) * (l0 - target) / (l0 - l) if l0 != l else float(s)
        prev = (s, l)
    return p, None


def stats(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return sum(v) / len(v), min(v), max(v), len(v)


def fmt(st, digits=3, none="-", of=0):
    """mean [min, max]; "(n=K)" when fewer than `of` seeds are in it."""
    if st is None:
        return none
    mean, lo, hi, n = st
    t = "%.*f [%.*f, %.*f]" % (digits, mean, digits, lo, digits, hi) if n > 1 else "%.*f" % (digits, mean)
    return t + (" (n=%d)" % n if n < of else "")


def by_step(seeds):
    """Eval steps of any seed, and per step the losses of the seeds that evaluated there."""
    steps = sorted(set(s for c in seeds.values() for s, _ in c))
    vals = {s: [] for s in steps}
    for c in seeds.values():
        for s, l in c:
            vals[s].append(l)
    return steps, vals


def read_paper(path):
    """{variant: [(update, loss)]} of one of the paper's CSVs (data row n = update 250 n)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise ReportError("%s: no data rows" % path)
    head = rows[0]
    cols = {}
    for i, h in enumerate(head):
        m = re.search(r"_(vanilla|symmetric|pairwise)_.* - eval/loss$", h)
        if m:
            cols["original" if m.group(1) == "vanilla" else m.group(1)] = i
    if sorted(cols) != sorted(VARIANTS):
        raise ReportError("%s: expected a '... - eval/loss' column per variant, found %s" % (path, sorted(cols)))
    out = {v: [] for v in VARIANTS}
    for n, r in enumerate(rows[1:], 1):
        for v, i in cols.items():
            try:
                out[v].append((250 * n, float(r[i])))
            except (ValueError, IndexError):
                raise ReportError("%s:%d: column %d is not a number" % (path, n + 1, i + 1))
    return out


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def plot(runs, paper, png, unfinished):
    tmp = tempfile.mkdtemp(prefix="figure2.")
    left, right = [], []
    for (kind, v) in sorted(runs, key=lambda k: (k[0] != "bt", VARIANTS.index(k[1]))):
        steps, vals = by_step(runs[(kind, v)])
        f = os.path.join(tmp, "%s-%s.dat" % (kind, v))
        with open(f, "w") as o:
            for s in steps:
                x = vals[s]
                o.write("%d %.6f %.6f %.6f\n" % (s, sum(x) / len(x), min(x), max(x)))
        c = COLOURS[v]
        n = len(runs[(kind, v)])
        cut = sum(1 for k, vv, _, _ in unfinished if (k, vv) == (kind, v))
        lab = "%s %s (%d seeds%s)" % (KINDS[kind], v, n, ", %d to the end" % (n - cut) if cut else "")
        if kind == "bt":
            left.append("'%s' using 1:3:4 with filledcurves lc rgb '%s' fs transparent solid 0.25 noborder notitle" % (f, c))
            left.append("'%s' using 1:2 with lines lc rgb '%s' lw 2.5 title '%s'" % (f, c, lab))
        else:
            left.append("'%s' using 1:3:4 with filledcurves lc rgb '%s' fs transparent pattern 4 noborder notitle" % (f, c))
            left.append("'%s' using 1:2 with linespoints lc rgb '%s' lw 1.5 dt 2 pt 6 ps 0.8 title '%s'" % (f, c, lab))
    for size, curves in paper.items():
        for v in VARIANTS:
            f = os.path.join(tmp, "paper-%s-%s.dat" % (size, v))
            with open(f, "w") as o:
                for s, l in curves[v]:
                    o.write("%d %.6f\n" % (s, l))
            right.append("'%s' using 1:2 with lines lc rgb '%s' lw %s dt %d title 'paper BERT-%s %s'"
                         % (f, COLOURS[v], "2" if size == "small" else "1.5", 1 if size == "small" else 2, size, v))
    gp = os.path.join(tmp, "plot.gp")
    with open(gp, "w") as o:
        o.write("set terminal pngcairo size 1600,650 font ',11'\nset output '%s.tmp'\n" % png)
        o.write("set multiplot layout 1,2\nset grid\nset key top right\nset ylabel 'eval MLM loss (nats)'\n")
        o.write("set xlabel 'updates'\nset title 'this recipe: BERT-small, mean and min-max over seeds'\n")
        o.write("set yrange [*:*]\nplot %s\n" % ", ".join(left))
        o.write("set title \"the paper's logged eval loss (Courtois et al. 2024, Figure 2), first 60,000 of 200,000 updates\"\n")
        o.write("set xrange [0:60000]\nset yrange [1.5:10.5]\nplot %s\nunset multiplot\n" % ", ".join(right))
    try:
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(png + ".tmp"):
            raise ReportError("gnuplot failed: %s" % r.stderr.strip()[-500:])
        os.rename(png + ".tmp", png)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(png + ".tmp"):
            os.unlink(png + ".tmp")


def table(runs, paper, unfinished, warmup, drop, timings):
    L = []
    kinds = [k for k in KINDS if any(key[0] == k for key in runs)]
    cols = [(k, v) for k in kinds for v in VARIANTS if (k, v) in runs]
    steps = sorted(set(s for c in cols for s in by_step(runs[c])[0]))
    cell = lambda c, s: fmt(stats(by_step(runs[c])[1].get(s, [])), of=len(runs[c]))
    L.append("### Eval loss (mean [min, max] over seeds; (n=K): only K seeds reached that update)\n")
    L.append("| update | " + " | ".join("%s %s" % (KINDS[k], v) for k, v in cols) + " |")
    L.append("|---:|" + "---|" * len(cols))
    for s in steps:
        L.append("| %d | " % s + " | ".join(cell(c, s) for c in cols) + " |")
    L.append("")
    last_step = steps[-1]
    L.append("### Plateau and its exit (mean [min, max] over seeds)\n")
    L.append("Plateau value P: the eval loss at the first evaluation at or after the end of the warm-up "
             "(update %d). Exit: the first update where the eval loss is %.1f below P (linear "
             "interpolation between evaluations); `n/m` = runs that got there.\n" % (warmup, drop))
    L.append("| trainer | variant | seeds | P | exit update | eval loss at update %d |" % last_step)
    L.append("|---|---|---|---|---|---|")
    cut = {(k, v, s): st for k, v, s, st in unfinished}
    for k, v in cols:
        ps, ex, notes = [], [], []
        for seed, c in sorted(runs[(k, v)].items()):
            p, e = plateau_exit(c, warmup, drop)
            ps.append(p)
            ex.append(e)
            if (k, v, seed) in cut:
                notes.append("%d stopped at %d" % (seed, cut[(k, v, seed)]))
        got = sum(e is not None for e in ex)
        last = stats([dict(c).get(last_step) for c in runs[(k, v)].values()])
        seeds = ", ".join(str(s) for s in sorted(runs[(k, v)])) + (" (%s)" % "; ".join(notes) if notes else "")
        L.append("| %s | %s | %s | %s | %s (%d/%d) | %s |" % (KINDS[k], v, seeds, fmt(stats(ps)), fmt(stats(ex), 0),
                                                            got, len(ex), fmt(last, of=len(runs[(k, v)]))))
    for size, curves in sorted(paper.items(), reverse=True):
        for v in VARIANTS:
            p, e = plateau_exit(curves[v], 10000, drop)
            at = dict(curves[v])
            L.append("| paper BERT-%s | %s | 1 | %.3f | %s | %.3f at 200,000; %.3f at 15,000 |"
                     % (size, v, p, "%.0f" % e if e is not None else "-", curves[v][-1][1], at.get(15000, float("nan"))))
    L.append("")
    pairs = [v for v in VARIANTS if ("bt", v) in runs and ("torch", v) in runs]
    if pairs:
        L.append("### bert-train beside PyTorch (mean [min, max] over seeds; overlap: do the min-max ranges meet)\n")
        L.append("| update | " + " | ".join("bert-train %s | PyTorch %s | overlap" % (v, v) for v in pairs) + " |")
        L.append("|---:|" + "---|---|:-:|" * len(pairs))
        summary = {}
        for s in steps:
            cells = []
            for v in pairs:
                a = stats(by_step(runs[("bt", v)])[1].get(s, []))
                b = stats(by_step(runs[("torch", v)])[1].get(s, []))
                if a is None or b is None:
                    cells.append("%s | %s | " % (fmt(a), fmt(b)))
                    continue
                ov = a[1] <= b[2] and b[1] <= a[2]
                summary.setdefault(v, []).append(ov)
                cells.append("%s | %s | %s" % (fmt(a, of=len(runs[("bt", v)])), fmt(b, of=len(runs[("torch", v)])),
                                              "yes" if ov else "**no**"))
            L.append("| %d | " % s + " | ".join(cells) + " |")
        L.append("")
        for v in pairs:
            L.append("- %s: the ranges overlap at %d of %d eval steps." % (v, sum(summary[v]), len(summary[v])))
        L.append("")
    if unfinished:
        L.append("Unfinished runs (their evaluations up to where they stopped are used): " +
                 ", ".join("%s %s seed %d (last update %d)" % (KINDS[k], v, s, st) for k, v, s, st in sorted(unfinished)) + ".\n")
    if timings and os.path.exists(timings):
        L.append("### Timings (timings.txt)\n\n```\n" + open(timings).read().rstrip() + "\n```\n")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--paper", required=True, help="folder with validation_loss_bert_{small,base}.csv")
    ap.add_argument("--png", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--steps", type=int, default=0, help="a finished run's last step (0: any)")
    ap.add_argument("--warmup", type=int, default=120, help="warm-up of the runs, for the plateau value (120)")
    ap.add_argument("--drop", type=float, default=1.0, help="how far below the plateau is its exit (1.0)")
    ap.add_argument("--timings", help="timings.txt of run.sh, copied into the table")
    a = ap.parse_args()
    try:
        runs, unfinished = load_runs(a.runs, a.steps)
        paper = {size: read_paper(os.path.join(a.paper, "validation_loss_bert_%s.csv" % size))
                 for size in ("small", "base")}
        write_atomic(a.md, table(runs, paper, unfinished, a.warmup, a.drop, a.timings))
        plot(runs, paper, a.png, unfinished)
    except (ReportError, OSError) as e:
        print("report: %s" % e, file=sys.stderr)
        return 1
    print("report: %d curves (%s) -> %s, %s" % (len(runs), ", ".join("%s %s" % k for k in sorted(runs)), a.png, a.md),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
