"""A sweep's summary over seeds, one row per grid point: ``summary.csv``, ``summary.md`` and the printed table.

For the best-epoch validation accuracy and the test accuracy of each grid
point: n (the trials that have a value), the mean, the sample standard
deviation (ddof = 1, undefined for one trial), the standard error std / sqrt(n)
and a 95% confidence interval mean ± t(0.975, n - 1) · se from Student's t
distribution (the seeds are few: the normal 1.96 would be too narrow). Both
files are rewritten, atomically, whenever ``results.jsonl`` is, so an
interrupted sweep has them too; ``mlptrain sweep --report`` rebuilds the table
from ``results.jsonl`` alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlptrain.runs.files import write_text
from mlptrain.sweep.results import show_value

SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"
STATUSES = ("complete", "diverged", "failed")
PRUNED = "pruned"  # a search's status: a column of summary.csv only when some trial has it
# Student's t 0.975 quantiles by degrees of freedom (two-sided 95%); between the entries past 30, linear in
# 1/df, which is how the quantile approaches the normal's 1.96 (tests/test_sweep_summary.py checks them).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}
Z975 = 1.960
METRICS = {"val_acc": "best_val_acc", "test_acc": "test_acc"}  # summary prefix -> results.jsonl column
STAT_COLUMNS = ("n", "mean", "std", "se", "ci95_low", "ci95_high")
EXPLAINED = ("mean over the seeds; std: sample standard deviation (ddof = 1); se = std / sqrt(n); "
             "95% CI: mean ± t(0.975, n - 1) × se (Student's t); n: the trials with a value")


def t975(df: int) -> float:
    """Student's t 0.975 quantile for ``df`` >= 1 degrees of freedom (to 3 decimals)."""
    if df in T975:
        return T975[df]
    known = sorted(T975)
    above = next((d for d in known if d > df), None)
    below = max(d for d in known if d < df)
    upper = (1 / above, T975[above]) if above else (0.0, Z975)
    share = (1 / below - 1 / df) / (1 / below - upper[0])
    return T975[below] + share * (upper[1] - T975[below])


@dataclass(frozen=True)
class Stat:
    """One metric over the seeds of a grid point; ``std`` and the rest are None for one value."""

    n: int
    mean: float
    std: float | None
    se: float | None
    ci95_low: float | None
    ci95_high: float | None


def stat(values: list[float | None]) -> Stat | None:
    """The statistics of the values present; None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    mean = statistics.fmean(present)
    if len(present) < 2:
        return Stat(1, mean, None, None, None, None)
    std = statistics.stdev(present)
    se = std / math.sqrt(len(present))
    half = t975(len(present) - 1) * se
    return Stat(len(present), mean, std, se, mean - half, mean + half)


@dataclass(frozen=True)
class Point:
    """A grid point's summary: its values, its trials' statuses and the two accuracies' statistics."""

    params: dict[str, Any]
    trials: int
    statuses: dict[str, int]
    val_acc: Stat | None
    test_acc: Stat | None


def summarize(records: list[dict[str, Any]], varying: list[str]) -> list[Point]:
    """One Point per grid point, in the order the records first show it (the grid's order)."""
    points: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        points.setdefault(json.dumps([r["params"].get(k) for k in varying]), []).append(r)
    summary = []
    for rows in points.values():
        statuses = {s: n for s in (*STATUSES, PRUNED) if (n := sum(r["status"] == s for r in rows))}
        summary.append(Point({k: rows[0]["params"].get(k) for k in varying}, len(rows), statuses,
                             stat([r.get("best_val_acc") for r in rows]), stat([r.get("test_acc") for r in rows])))
    return summary


def best_first(points: list[Point]) -> list[Point]:
    """Best mean validation accuracy first; points without one last."""
    return sorted(points, key=lambda p: -p.val_acc.mean if p.val_acc else math.inf)


def write_summaries(sweep_dir: Path, varying: list[str], records: list[dict[str, Any]]) -> None:
    """Rewrite ``summary.csv`` (fractions) and ``summary.md`` (percent), one row per grid point, grid order."""
    points = summarize(records, varying)
    write_text(sweep_dir / SUMMARY_CSV, summary_csv(points, varying))
    write_text(sweep_dir / SUMMARY_MD, summary_markdown(points, varying))


def summary_csv(points: list[Point], varying: list[str]) -> str:
    statuses = [*STATUSES, *([PRUNED] if any(PRUNED in p.statuses for p in points) else [])]
    columns = [*varying, "trials", *statuses,
               *(f"{metric}_{column}" for metric in METRICS for column in STAT_COLUMNS)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for p in points:
        cells = [show_value(p.params[k]) for k in varying] + [p.trials, *(p.statuses.get(s, 0) for s in statuses)]
        for metric in METRICS:
            s = getattr(p, metric)
            cells += ["" if s is None or getattr(s, c) is None else repr(getattr(s, c)) for c in STAT_COLUMNS]
        writer.writerow(cells)
    return text.getvalue()


def summary_markdown(points: list[Point], varying: list[str]) -> str:
    """A Markdown table in percent, with a line above it saying what the numbers are."""
    headers = [*varying, "n", "val acc %", "val 95% CI", "test acc %", "test se", "test 95% CI", "status"]
    lines = [f"Accuracy in percent: {EXPLAINED}.", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i < len(varying) else "--:" for i in range(len(headers) - 1)) + "|---|"]
    for p in points:
        cells = [show_value(p.params[k]) for k in varying] + [_n(p), _pm(p.val_acc), _ci(p.val_acc),
                                                              _pm(p.test_acc), _se(p.test_acc), _ci(p.test_acc),
                                                              _statuses(p)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_points(points: list[Point], varying: list[str]) -> str:
    """The terminal table, best validation accuracy first, and what ± means."""
    headers = [*varying, "seeds", "val acc %", "95% CI", "test acc %", "95% CI", "status"]
    rows = [[*(show_value(p.params[k]) for k in varying), str(p.trials), _pm(p.val_acc), _ci(p.val_acc),
             _pm(p.test_acc), _ci(p.test_acc), _statuses(p)] for p in best_first(points)]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    left = {*range(len(varying)), len(headers) - 1}  # names and statuses read left-aligned, numbers right

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(headers), *(line(r) for r in rows), f"({EXPLAINED})"]
    return "\n".join(text.rstrip() for text in out)


def _n(p: Point) -> str:
    n = p.test_acc.n if p.test_acc else 0
    return str(n) if n == p.trials else f"{n} of {p.trials}"


def _pm(s: Stat | None) -> str:
    if s is None:
        return "-"
    return f"{100 * s.mean:.2f}" + ("" if s.std is None else f" ± {100 * s.std:.2f}")


def _se(s: Stat | None) -> str:
    return "-" if s is None or s.se is None else f"{100 * s.se:.2f}"


def _ci(s: Stat | None) -> str:
    return "-" if s is None or s.ci95_low is None else f"[{100 * s.ci95_low:.2f}, {100 * s.ci95_high:.2f}]"


def _statuses(p: Point) -> str:
    return ", ".join(f"{n} {s}" for s, n in p.statuses.items())
