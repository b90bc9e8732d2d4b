"""``mlptrain export``: a run's network as an ONNX model, for onnxruntime and every tool that reads ONNX."""

from __future__ import annotations

from pathlib import Path

import click

from mlptrain.cli.types import OutputFile


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=OutputFile(), metavar="FILE",
              help="Where to write the model [default: RUN_DIR/model.onnx].")
def export(run_dir: Path, out: Path | None) -> None:
    """Export the network in RUN_DIR as an ONNX model.

    Input `images`: float32 [N, H*W], pixel / 255 in [0, 1], N dynamic; outputs
    `logits` and `probabilities`. Needs the onnx package (pip install 'mlptrain[onnx]').

    \b
    Example:
        mlptrain export runs/my-run --out model.onnx
    """
    from mlptrain.infer.onnx import export as write_onnx
    from mlptrain.infer.predict import load_model

    model = load_model(run_dir)
    out = out or run_dir / "model.onnx"
    size = write_onnx(model, out)
    sizes = "-".join(map(str, model.net.sizes))
    click.echo(f"wrote {out} ({size / 1e6:.1f} MB): {sizes} {model.net.activation.name}, {model.dataset}")
