"""``mlptrain data``: download, verify and list the cached data sets; import a user's own as IDX."""

from __future__ import annotations

from pathlib import Path

import click

from mlptrain.cli.common import (
    Failure,
    Group,
    config_key_options,
    data_dir_option,
    data_options,
    download_progress,
    load_data,
)

PREPARATION_KEYS = ("preprocess", "image_size", "image_shape", "test_size")


@click.group(cls=Group)
def data() -> None:
    """Download, verify and list the cached data sets; import your own as IDX files.

    \b
    Example:
        mlptrain data download --dataset fashion-mnist
    """


def _known_datasets(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    """Check --dataset names against the DATASETS table as it is now (a usage error: exit 2)."""
    from mlptrain.data.datasets import get_dataset
    from mlptrain.errors import ConfigError

    for name in names:
        try:
            get_dataset(name)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return names


@data.command()
@click.option("--dataset", "datasets", multiple=True, default=["mnist"], show_default=True,
              metavar="NAME", callback=_known_datasets,
              help="Data set to fetch, as listed by `mlptrain data list` (repeatable).")
@data_options
def download(datasets: tuple[str, ...], data_dir: Path, mirror: str | None, quiet: bool) -> None:
    """Fetch data sets into the cache and verify their checksums.

    Files already cached and intact are not fetched again.

    \b
    Examples:
        mlptrain data download
        MLPTRAIN_MIRROR=/mnt/datasets/mnist mlptrain data download --dataset mnist
    """
    from mlptrain.data.datasets import get_dataset
    from mlptrain.data.download import ensure_dataset

    for name in datasets:
        directory = ensure_dataset(get_dataset(name), data_dir, mirror=mirror, progress=download_progress(quiet))
        click.echo(f"{name}: verified in {directory}")


@data.command()
@click.option("--dataset", "datasets", multiple=True, metavar="NAME", callback=_known_datasets,
              help="Data set to check (repeatable) [default: every cached one].")
@data_dir_option
def verify(datasets: tuple[str, ...], data_dir: Path) -> None:
    """Check the cached files against their published checksums (exit 1 if any fail).

    \b
    Example:
        mlptrain data verify --dataset mnist
    """
    from mlptrain.data.datasets import DATASETS, get_dataset
    from mlptrain.data.download import cache_status

    names = datasets or [n for n, spec in DATASETS.items() if any(s.present for s in cache_status(spec, data_dir))]
    bad: dict[str, int] = {}
    for name in names:
        for status in cache_status(get_dataset(name), data_dir):
            state = "ok" if status.verified else "MISSING" if not status.present else "CORRUPT"
            click.echo(f"{name:<14} {status.name:<28} {state}")
            if not status.verified:
                bad[name] = bad.get(name, 0) + 1
    if not names:
        click.echo(f"no data sets cached in {data_dir}; run: {_download_command(['mnist'], data_dir)}")
    if bad:
        raise Failure(f"{sum(bad.values())} file(s) missing or corrupt; run: "
                      f"{_download_command(list(bad), data_dir)}", 1)


def _download_command(names: list[str], data_dir: Path) -> str:
    """The ``mlptrain data download`` line that fetches ``names`` into ``data_dir``, ready to paste."""
    import shlex

    from mlptrain.data.cache import default_data_dir

    where = "" if data_dir == default_data_dir() else f" --data-dir {shlex.quote(str(data_dir))}"
    return "mlptrain data download" + "".join(f" --dataset {name}" for name in names) + where


@data.command("list")
@data_dir_option
def list_(data_dir: Path) -> None:
    """List the known data sets and what of each is cached (size, verified or not).

    \b
    Example:
        mlptrain data list --data-dir ~/mlptrain-data
    """
    from mlptrain.data.datasets import DATASETS
    from mlptrain.data.download import cache_status

    click.echo(f"{'dataset':<14} {'files':>5} {'MB':>7}  state         description")
    for name, spec in DATASETS.items():
        statuses = cache_status(spec, data_dir)
        present = [s for s in statuses if s.present]
        size = sum(s.size or 0 for s in present) / 1e6
        state = ("verified" if all(s.verified for s in statuses) else "CORRUPT" if any(
            s.present and not s.verified for s in statuses) else "partial" if present else "not cached")
        click.echo(f"{name:<14} {len(present):>3}/4 {size:>7.1f}  {state:<13} {spec.description}")
    click.echo(f"cache: {data_dir.resolve()}")


@data.command("import")
@click.argument("source", metavar="SRC")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Directory to write the IDX files and classes.txt into (new, or without a data set in it).")
@config_key_options(*PREPARATION_KEYS)
@data_options
def import_(source: str, out: Path, data_dir: Path, mirror: str | None, quiet: bool, **flags: object) -> None:
    """Write a data set, prepared as fit prepares it, as gzipped IDX files plus classes.txt, for other tools.

    SRC is anything --dataset takes: a known name, an IDX directory, class folders of images, CSV files or a
    .npz archive. Class-folder images are prepared (--preprocess, --image-size); a set without a test split
    is split by --test-size, as fit splits it.

    \b
    Examples:
        mlptrain data import letters/ --out letters-idx
        mlptrain data import digits.csv --test-size 0.1 --out digits-idx
    """
    from mlptrain.configfile import resolve_config
    from mlptrain.data.idxdir import write_set

    config = resolve_config(None, {"dataset": source, **flags}).config
    dataset, _ = load_data(source, data_dir, mirror, quiet, config.preparation())
    shape = (-1, *dataset.image_shape)
    written = write_set(out, {"train": (dataset.train_images.reshape(shape), dataset.train_labels),
                              "test": (dataset.test_images.reshape(shape), dataset.test_labels)},
                        dataset.class_names or tuple(str(k) for k in range(dataset.n_classes)))
    size = "x".join(map(str, reversed(dataset.image_shape)))
    click.echo(f"{source}: {len(dataset.train_labels)} training and {len(dataset.test_labels)} test images, "
               f"{size} pixels, {dataset.n_classes} classes, written to {out}:")
    for path in written:
        click.echo(f"  {path.name}")
