"""``mlptrain predict``: a trained network's classes for image files, directories, ``.npy`` and IDX arrays.

A bad input is one ``warning:`` line on stderr and the others are still
predicted; the exit status is then 1. When no input at all could be read the
command ends with one ``Error:`` line (exit 1). Blank images are predicted with
a warning (exit 0); files skipped in a directory get a ``note:`` (exit 0).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlptrain.cli.common import threads_option

PREPROCESS_HELP = ("mnist: invert, remove the background, crop, scale to 20/28 of the side and centre by mass, "
                   "as MNIST was made; none: images already in the data set's format. Arrays are never preprocessed. "
                   "[default: the run's own choice (fit --preprocess), mnist for runs that did not record one]")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--top-k", "k", type=click.IntRange(min=1), default=1, show_default=True, metavar="K",
              help="Show the K likeliest classes of each input.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input image, one per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.option("--preprocess", type=click.Choice(["mnist", "none"]), help=PREPROCESS_HELP)
@click.option("--save-preprocessed", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write what the network saw, one PNG per input image, into DIR.")
@threads_option
def predict(run_dir: Path, inputs: tuple[str, ...], k: int, as_json: bool, as_csv: bool, preprocess: str | None,
            save_preprocessed: Path | None, threads: int | None) -> None:
    """Predict the class of each INPUT with the network in RUN_DIR.

    INPUT: image files (PNG, JPEG, BMP, GIF, TIFF, PGM, ...), directories of them,
    .npy arrays (N, H, W) or (N, H*W) of uint8 0-255 or floats 0-1, and IDX files.
    A bad input is a warning and the rest are predicted; the exit status is then 1.

    \b
    Examples:
        mlptrain predict runs/my-run digit.png
        mlptrain predict runs/my-run photos/ --top-k 3 --save-preprocessed seen/
        mlptrain predict runs/my-run t10k-images-idx3-ubyte.gz --json
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    from mlptrain.infer.predict import load_model

    model = load_model(run_dir)
    if k > model.n_classes:
        raise click.BadParameter(f"the network has {model.n_classes} classes; choose 1 to {model.n_classes}",
                                 param_hint="--top-k")
    printer = _Printer("json" if as_json else "csv" if as_csv else "table", k)
    predicted, failed = _predict_all(model, list(inputs), preprocess or model.preprocess, printer, save_preprocessed,
                                     threads)
    _finish(printer, predicted, failed)


def _predict_all(model: Any, inputs: list[str], preprocess: str, printer: _Printer, save_to: Path | None,
                 threads: int | None) -> tuple[int, list[str]]:
    """Predict every readable input into ``printer``; returns the images predicted and the failures."""
    from mlptrain.infer.inputs import Block, read_inputs
    from mlptrain.infer.predict import check_outputs, probabilities, records
    from mlptrain.threads import available_cores, blas_threads

    failed: list[str] = []
    predicted = 0
    workers = threads or available_cores()
    with blas_threads(1):  # one BLAS thread per worker: see infer.predict.probabilities
        for item in read_inputs(inputs, model.image_shape, preprocess):
            if not isinstance(item, Block):
                if item.kind == "failed":
                    failed.append(item.message)
                else:
                    click.echo(f"note: {item.message}", err=True)
                continue
            if item.blank:
                click.echo(f"warning: {item.source}: no ink found (a blank image); predicted anyway", err=True)
            if save_to is not None:
                _save(save_to, item, model.image_shape, predicted)
            probs = probabilities(model.net, item.images, workers=workers)
            check_outputs(model, probs, item.source)
            printer.add(records(item.source, item.indices, probs, printer.k, model.class_names))
            predicted += len(item.images)
    return predicted, failed


def _finish(printer: _Printer, predicted: int, failed: list[str]) -> None:
    """Print the results, then the failures: one ``Error:`` when nothing else was, else warnings (exit 1)."""
    if not predicted and len(failed) == 1:
        raise click.ClickException(failed[0])
    for message in failed:
        click.echo(f"warning: {message}", err=True)
    if not predicted:
        raise click.ClickException(f"none of the {len(failed)} inputs could be read" if failed
                                   else "no images to predict")
    printer.flush()
    if failed:
        click.echo(f"Error: {len(failed)} input(s) could not be read (see the warnings above); "
                   f"the other {predicted} image(s) were predicted", err=True)
        sys.exit(1)


def _save(directory: Path, block: Any, shape: tuple[int, int], counter: int) -> None:
    from mlptrain.fsutil import make_dirs
    from mlptrain.infer.inputs import save_png

    try:
        make_dirs(directory)
        stem = Path(block.source).stem
        for i, row in enumerate(block.images):
            name = f"{counter + i:05d}-{stem}" + (f"-{block.indices[i]}" if block.indices is not None else "")
            image = row.reshape(shape)
            save_png(directory / f"{name}.png", image / 255.0 if image.dtype.kind == "u" else image)
    except OSError as exc:
        raise click.ClickException(f"cannot write to --save-preprocessed {directory}: {exc.strerror or exc}")


class _Printer:
    """Rows out as a table (collected, for the column widths), JSON lines or CSV (streamed)."""

    def __init__(self, style: str, k: int) -> None:
        self.style, self.k, self.table = style, k, []
        self._header_due = style == "csv"  # written with the first row: no header when every input failed

    def add(self, rows: list[dict[str, Any]]) -> None:
        if self._header_due:
            top = [f"{what}_{i}" for i in range(1, self.k + 1) for what in ("class", "label", "probability")]
            self._csv(["input", "index", "predicted", "label", "probability", *(top if self.k > 1 else [])])
            self._header_due = False
        if self.style == "json":
            import json

            click.echo("\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
        elif self.style == "csv":
            for row in rows:
                top = [v for t in row["top_k"] for v in (t["class"], t["label"], f"{t['probability']:.6g}")]
                self._csv([row["input"], row.get("index", ""), row["predicted"], row["label"],
                           f"{row['probability']:.6g}", *(top if self.k > 1 else [])])
        else:
            self.table += rows

    def _csv(self, values: list[Any]) -> None:
        import csv
        import io

        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(values)
        click.echo(line.getvalue())

    def flush(self) -> None:
        if self.style == "table":
            click.echo(format_table(self.table, self.k))


def format_table(rows: list[dict[str, Any]], k: int) -> str:
    """input, class, label, probability (and with ``k`` > 1 the runners-up), aligned."""
    names = [r["input"] + (f"[{r['index']}]" if "index" in r else "") for r in rows]
    width = max(5, *(len(n) for n in names))
    label = max(5, *(len(r["label"]) for r in rows))
    header = f"{'input':<{width}}  class  {'label':<{label}}  probability"
    lines = [header + (f"  then (top {k})" if k > 1 else "")]
    for name, row in zip(names, rows):
        line = f"{name:<{width}}  {row['predicted']:>5}  {row['label']:<{label}}  {row['probability']:>11.1%}"
        if k > 1:
            line += "  " + ", ".join(f"{t['label']} {t['probability']:.1%}" for t in row["top_k"][1:])
        lines.append(line)
    return "\n".join(lines)
