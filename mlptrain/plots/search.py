"""PNG plots of a search: the optimisation history, and how much each parameter mattered (Optuna's PED-ANOVA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlptrain.plots.common import pyplot, save

SEARCH_HISTORY, SEARCH_IMPORTANCE = "search-history.png", "search-importance.png"


def plot_search(sweep_dir: Path) -> list[Path]:
    """``search-history.png`` always; ``search-importance.png`` once two trials have finished with a value."""
    from mlptrain.errors import RunDirError
    from mlptrain.sweep.results import read_results
    from mlptrain.sweep.study import param_importances

    records = read_results(sweep_dir)
    if not records:
        raise RunDirError(f"{sweep_dir} has no finished trial to plot yet")
    paths = [save(history_figure(records), sweep_dir / SEARCH_HISTORY)]
    importances = param_importances(sweep_dir)
    if importances:
        paths.append(save(importance_figure(importances), sweep_dir / SEARCH_IMPORTANCE))
    return paths


def _number(record: dict[str, Any]) -> int:
    return int(record["trial"].rsplit("-", 1)[1])


def history_figure(records: list[dict[str, Any]]) -> Any:
    """Each trial's best-epoch validation accuracy by trial number (pruned: the epochs it ran), and the best so far."""
    from matplotlib.ticker import PercentFormatter

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ordered = sorted((r for r in records if r.get("best_val_acc") is not None), key=_number)
    for status, style in (("complete", dict(marker="o", color="C0")), ("diverged", dict(marker="v", color="C3")),
                          ("pruned", dict(marker="x", color="0.5"))):
        points = [(_number(r), r["best_val_acc"]) for r in ordered if r["status"] == status]
        if points:
            ax.scatter(*zip(*points), label=status, **style)
    ran = [(_number(r), r["best_val_acc"]) for r in ordered if r["status"] in ("complete", "diverged")]
    if ran:
        best, xs, ys = -1.0, [], []
        for x, y in ran:
            best = max(best, y)
            xs.append(x)
            ys.append(best)
        ax.step(xs, ys, where="post", color="C1", label="best so far")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="trial", ylabel="validation accuracy (best epoch)", title="search history")
    ax.legend()
    return fig


def importance_figure(importances: dict[str, float]) -> Any:
    """Horizontal bars, most important parameter on top."""
    plt = pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.45 * len(names)), layout="constrained")
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set(xlabel="importance for the validation accuracy (PED-ANOVA, sums to 1)", title="parameter importance")
    return fig
