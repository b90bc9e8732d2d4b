"""``mlptrain init-scan``, ``lr-find`` and ``gradcheck``: what to set before training (``fit --dry-run`` is in fit)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from mlptrain.cli.common import (
    config_file_option,
    config_options,
    data_options,
    load_data,
    resolved_config,
    show_progress,
    threads_option,
)
from mlptrain.cli.types import FiniteFloat, OutputFile
from mlptrain.threads import available_cores, blas_threads

# The ranges that mean something: r as the config's init_range takes it (a grid below 1e-8 only adds points of
# gain 0), and learning rates as the config's lr takes them (a suggestion above 10 could not be used).
R_LIMITS = (1e-8, 100.0)
LR_MAX = 10.0
DELTA_LIMITS = (1e-8, 1e-3)  # gradcheck's step: see its help


def tuning_options(f: Callable) -> Callable:
    """After the command's own options: --config and every config flag (as in fit), --threads, the data options."""
    return config_file_option(config_options(data_options(threads_option(f))))


def _setup(config_file: str | None, flags: dict[str, Any], data_dir: Path, mirror: str | None, quiet: bool):
    config = resolved_config(config_file, flags, quiet)
    data, _ = load_data(config.dataset, data_dir, mirror, quiet, config.preparation())
    return config, data


def _sizes(config: Any, data: Any) -> str:
    return "-".join(map(str, [data.n_inputs, *config.hidden, data.n_classes]))


@click.command("init-scan")
@click.option("--activations", metavar="LIST",
              help="Comma-separated activations to scan, or 'all' [default: the config's activation].")
@click.option("--factor", type=FiniteFloat(1, 1e6, low_open=True), default=2.0, show_default=True,
              help="Healthy: the total gain within this factor of 1.")
@click.option("--r-min", type=FiniteFloat(R_LIMITS[0], R_LIMITS[1]), default=1e-4, show_default=True,
              help="Smallest r of the grid.")
@click.option("--r-max", type=FiniteFloat(R_LIMITS[0], R_LIMITS[1]), default=10.0, show_default=True,
              help="Largest r of the grid.")
@click.option("--per-decade", type=click.IntRange(1, 100), default=4, show_default=True,
              help="Grid points per decade of r.")
@click.option("--out", type=OutputFile(), default=Path("init-scan.png"),
              show_default=True, help="Where to write the plot.")
@tuning_options
def init_scan(config_file: str | None, activations: str | None, factor: float, r_min: float, r_max: float,
              per_decade: int, out: Path, threads: int | None, data_dir: Path, mirror: str | None, quiet: bool,
              **flags: Any) -> None:
    """Which init scale keeps the signal alive? Scan U(-r, r) and the initializers at init.

    For the config's layer sizes, the init check's total gain (the product of
    the layer gains on the probe batch, what fit --verbose prints) for U(-r, r)
    over a log grid of r, for each initializer of the table and for the
    config's own init. Prints each activation's healthy band of r, then each
    init's gain, judged from that gain: inside (within --factor of 1), below
    (the signal vanishes) or above (it grows). The equivalent r beside it (the
    geometric mean over layers of the init's U(-r, r) limit) only places the
    init on the plot's r axis; whether it falls in the r band decides nothing,
    as only a plain U(-r, r) lies on the curve (a ReLU net's gain roughly
    follows that r, a tanh or softplus net's does not). Writes the plot to
    --out (a hollow marker: its gain is outside). Forward passes only.

    With a norm (--norm, or the config's) the nets are measured with it,
    batch norm in training mode, and judged by the spread the last norm
    keeps times the output layer's gain where it grows (the norm rescales
    every hidden layer, so only its eps and the output layer bound the
    band); each band is printed beside the same net's without the norm,
    and the plot draws those dashed (docs/tuning.md).

    \b
    Examples:
        mlptrain init-scan
        mlptrain init-scan --config configs/original-problem.yaml
        mlptrain init-scan --config original-problem-batchnorm
        mlptrain init-scan --hidden 256,256,256,256 --activations relu,tanh,logistic,elu
        mlptrain init-scan --activations all --factor 1.5 --out scan.png
    """
    from mlptrain.nn.activations import ACTIVATIONS
    from mlptrain.plots.common import preload
    from mlptrain.plots.tune import plot_init_scan
    from mlptrain.tune.initscan import log_grid, scan_init

    if activations and flags.get("activation"):
        raise click.UsageError("give --activation (the config's) or --activations (a list to scan), not both")
    if r_min >= r_max:
        raise click.UsageError(f"--r-min {r_min:g} must be below --r-max {r_max:g}")
    preload()  # matplotlib loads while the data is opened and the scan computes
    config, data = _setup(config_file, flags, data_dir, mirror, quiet)
    names = list(ACTIVATIONS) if activations == "all" else (activations or config.activation).split(",")
    with blas_threads(1):  # a worker thread per core, one BLAS thread each (see scan_init)
        scan = scan_init(config, data, [n.strip() for n in names], factor, log_grid(r_min, r_max, per_decade),
                         workers=threads or available_cores())
    click.echo(format_scan(scan))
    click.echo(f"wrote {plot_init_scan(scan, out)}")


def format_scan(scan: Any) -> str:
    """Per activation: the healthy r band (with a norm, and without it), then each init's measured gain, judged."""
    from mlptrain.tune.initscan import placed

    healthy = f"healthy {1 / scan.factor:.3g} .. {scan.factor:.3g}"
    grid = f"for U(-r, r), r = {scan.radii[0]:.3g} .. {scan.radii[-1]:.3g} ({len(scan.radii)} points)"
    sizes = "-".join(map(str, scan.sizes))
    if scan.plain:
        lines = [f"init-scale scan of {sizes} with {scan.norm} norm on the probe batch: the spread the last norm keeps "
                 f"times the output layer's gain where it grows, {grid}; healthy: within {scan.factor:g}x of 1"]
    else:
        lines = [f"init-scale scan of {sizes} on the probe batch: total gain input -> logits {grid}; "
                 f"healthy: within {scan.factor:g}x of 1"]
    without = {curve.activation: curve for curve in scan.plain}
    for curve in scan.curves:
        line = f"{curve.activation}: healthy r {_bands(curve.bands)}"
        if curve.activation in without:
            line += f" with {scan.norm} norm (without it: {_bands(without[curve.activation].bands)})"
        lines.append(line)
        lines.append(f"  {'init':<22} {'gain':>9}  {f'the gain ({healthy})':<28} {'equivalent r':>12}")
        for row in placed(scan, curve):
            name = f"yours ({scan.yours})" if row.name == "yours" else row.name
            lines.append(f"  {name:<22} {row.gain:>9.3g}  {_VERDICTS[row.position]:<28} {row.r:>12.3g}")
    return "\n".join(lines)


def _bands(bands: list[tuple[float, float]]) -> str:
    return ", ".join(f"{low:.3g} .. {high:.3g}" for low, high in bands) or "none on the grid"


_VERDICTS = {"inside": "inside", "below": "below: the signal vanishes", "above": "above: the signal grows"}


@click.command("lr-find")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New directory for lr-find.json and lr-find.png (no weights are saved).")
@click.option("--start-lr", "lr_low", type=FiniteFloat(0, LR_MAX, low_open=True), default=1e-7, show_default=True,
              help="First learning rate.")
@click.option("--end-lr", "lr_high", type=FiniteFloat(0, LR_MAX, low_open=True), default=10.0, show_default=True,
              help="Last learning rate (if the loss has not blown up before).")
@click.option("--steps", type=click.IntRange(2, 100_000), default=300, show_default=True,
              help="Training steps from --start-lr to --end-lr.")
@click.option("--smoothing", type=FiniteFloat(0, 1, high_open=True), default=0.98, show_default=True,
              help="Exponential smoothing of the loss.")
@click.option("--stop-factor", type=FiniteFloat(1, 1e6, low_open=True), default=4.0, show_default=True,
              help="Stop when the smoothed loss exceeds this times its minimum.")
@tuning_options
def lr_find(config_file: str | None, out: Path, lr_low: float, lr_high: float, steps: int, smoothing: float,
            stop_factor: float, threads: int | None, data_dir: Path, mirror: str | None, quiet: bool,
            **flags: Any) -> None:
    """Which learning rate? The LR range test (Smith 2017; fastai's lr_find).

    Trains the config's network (its optimizer, momentum, batch size, …) while
    the lr grows exponentially from --start-lr to --end-lr, one step at a time;
    stops when the smoothed loss exceeds --stop-factor times its minimum or
    turns NaN. Suggests the lr of the steepest descent of the smoothed loss and
    the lr of its minimum / 10. The config's --lr and schedule are not used.
    Same config and seed, same curve.

    \b
    Examples:
        mlptrain lr-find --out lr-find-default
        mlptrain lr-find --optimizer adam --out lr-find-adam
        mlptrain lr-find --config configs/mnist-best.yaml --steps 500 --out lr-find-best
    """
    from mlptrain.runs.lock import claim_new_dir
    from mlptrain.tune.lrfind import check_range

    check_range(lr_low, lr_high, steps, smoothing, stop_factor)
    config, data = _setup(config_file, flags, data_dir, mirror, quiet)
    with claim_new_dir(out, "lr-find directory", "an empty directory", "choose a new --out"):
        _lr_find_into(out, config, data, (lr_low, lr_high, steps, smoothing, stop_factor), threads, quiet)


def _lr_find_into(out: Path, config: Any, data: Any, test: tuple, threads: int | None, quiet: bool) -> None:
    """Run the range test and write lr-find.json and lr-find.png into ``out`` (claimed by the caller)."""
    from mlptrain.plots.tune import LR_FIND_FILE, plot_lr_find
    from mlptrain.runs.files import write_json
    from mlptrain.tune.lrfind import lr_find as range_test

    with blas_threads(threads), _StepBar(quiet, test[2]) as on_step:
        result = range_test(config, data, *test, on_step)
    steep, low = result.steepest(), result.minimum_over_10()
    click.echo(f"stopped: {result.stop_reason}")
    if steep is None or low is None:
        click.echo("suggestion: none (the loss never fell); lower --start-lr, or check the init with fit --dry-run")
    else:
        click.echo(f"suggestion: --lr {steep:.3g} (steepest descent of the smoothed loss); "
                   f"--lr {low:.3g} (its minimum / 10)")
    title = f"lr-find: {_sizes(config, data)} {config.activation} {config.init}, {config.optimizer}"
    try:
        write_json(out / "lr-find.json", {"config": config.to_dict(), **result.as_dict()})
        plot_lr_find(result, title, out / LR_FIND_FILE)
    except BaseException:  # both files or neither: the directory is this command's own, made new for them
        for name in ("lr-find.json", LR_FIND_FILE):
            (out / name).unlink(missing_ok=True)
        raise
    click.echo(f"wrote {out / 'lr-find.json'}, {out / LR_FIND_FILE}")


class _StepBar:
    """A tqdm bar of steps on stderr (when it is a terminal), as a context giving the callback."""

    def __init__(self, quiet: bool, total: int) -> None:
        self.bar = None
        if show_progress(quiet):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", leave=False)

    def __enter__(self) -> Callable[[int, int], None] | None:
        return (lambda done, total: self.bar.update(1)) if self.bar else None

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.close()


@click.command()
@click.option("--samples", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Probe images the loss is taken over.")
@click.option("--per-array", type=click.IntRange(1, 10_000_000), default=300, show_default=True,
              help="Entries checked per weight matrix or bias vector (all of them if it has no more).")
@click.option("--delta", type=FiniteFloat(*DELTA_LIMITS), default=1e-5, show_default=True,
              help="Step of the central differences (outside this range their own error, truncation above and "
              "rounding below, exceeds the tolerance).")
@tuning_options
def gradcheck(config_file: str | None, samples: int, per_array: int, delta: float, threads: int | None,
              data_dir: Path, mirror: str | None, quiet: bool, **flags: Any) -> None:
    """Is backprop right? The core's gradients against central differences, in float64.

    For the config's activation, initializer and layer sizes (the initial net,
    drawn in float64), compares every gradient entry of a small net, or
    --per-array random entries of each array of a big one, with central
    differences of the training loss on --samples probe images. Prints the
    largest relative error per array and PASS, or FAIL with exit status 1.
    Runs on one BLAS thread unless --threads says otherwise (the products are tiny).

    The loss is the one training minimises, with every loss option of the
    config, and the first lines say which: cross-entropy, with
    --label-smoothing when set, plus the L2 term of --weight-decay when the
    optimizer puts it in the gradient (sgd, adam). Not in it, and named when
    the config sets them: adamw's decoupled decay (its step applies it,
    outside the gradient), dropout and input dropout (random masks: the check
    runs without them, and backprop through a mask is the same code), max-norm
    (a projection after the step) and augmentation (it changes the inputs).

    \b
    Examples:
        mlptrain gradcheck
        mlptrain gradcheck --config configs/original-problem.yaml
        mlptrain gradcheck --label-smoothing 0.1 --weight-decay 0.0005
        mlptrain gradcheck --activation tanh --hidden 32,32 --per-array 100000
    """
    from mlptrain.tune.gradcheck import TOLERANCE
    from mlptrain.tune.gradcheck import gradcheck as check

    config, data = _setup(config_file, flags, data_dir, mirror, quiet)
    with blas_threads(threads or 1):
        result = check(config, data, samples, per_array, delta)
    checks = result.arrays
    click.echo(f"gradient check of {_sizes(config, data)} {config.activation} {config.init} in float64: "
               f"{samples} probe image(s), central differences with delta {delta:g}")
    click.echo(f"loss: {result.loss}")
    if result.left_out:
        click.echo(f"not in the loss, so not checked: {'; '.join(result.left_out)}")
    click.echo(f"  {'array':<6} {'layer':<8} {'checked':>17} {'max rel error':>14} {'max |grad|':>11} "
               f"{'at a kink':>9}")
    for c in checks:
        click.echo(f"  {c.name:<6} {c.layer:<8} {f'{c.checked} of {c.size}':>17} {c.max_error:>14.2e} "
                   f"{c.grad_max:>11.2e} {c.skipped:>9}")
    worst = max(checks, key=lambda c: c.max_error)
    failed = [c.name for c in checks if not c.passed]
    if failed:
        click.echo(f"FAIL: {', '.join(failed)} disagree with the central differences (largest error "
                   f"{worst.max_error:.2e} in {worst.name}, tolerance {TOLERANCE:g}): the backward pass or the "
                   f"{config.activation} derivative is wrong, or the loss's gradient ({result.loss})")
        sys.exit(1)
    click.echo(f"PASS: every checked gradient agrees within {TOLERANCE:g} (largest error {worst.max_error:.2e} "
               f"in {worst.name})")
