"""One description of an init, for every initializer in the table: the run name, inspect, the plots, the
init scan and the dry run all say what ``describe_init`` says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import build_config
from mlptrain.data.loading import load_dataset
from mlptrain.nn.initializers import INITIALIZERS, SCALE_SYMBOLS, describe_init
from mlptrain.plots.filters import filters_figure
from mlptrain.plots.run import curves_figure
from mlptrain.runs.report import load_run
from mlptrain.tune.initscan import scan_init

from synthetic import write_dataset

SCALES = {"init_range": 0.05, "init_std": 0.2}  # a value for each scale parameter the table knows


def scale_of(name: str) -> dict[str, float]:
    """The scale keyword ``name`` needs: ``{"init_range": 0.05}``, or nothing."""
    parameter = INITIALIZERS[name].parameter
    return {parameter: SCALES[parameter]} if parameter else {}


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_the_description_is_the_name_with_the_scale_the_row_needs(name: str) -> None:
    scale = scale_of(name)
    human, compact = describe_init(name, **scale), describe_init(name, **scale, compact=True)
    if not scale:
        assert human == compact == name
    else:
        [(parameter, value)] = scale.items()
        symbol = SCALE_SYMBOLS[parameter]
        assert (human, compact) == (f"{name} {symbol}={value:g}", f"{name}-{symbol}{value:g}")
    assert re.fullmatch(r"[a-z0-9.+-]+", compact), compact  # safe in a directory name
    assert describe_init(None) == "auto"


def test_a_scale_the_row_does_not_use_is_not_shown() -> None:
    assert describe_init("he-normal", init_range=0.1) == "he-normal"
    assert describe_init("uniform", init_std=0.1) == "uniform"
    assert describe_init("uniform", 1e-5, compact=True) == "uniform-r1e-05"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


def flags(name: str) -> list[str]:
    """``--init NAME`` and its scale flag, as a user would type them."""
    scale = [arg for key, value in scale_of(name).items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    return ["--init", name, *scale]


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_every_report_names_the_init_as_describe_init_does(name: str, tiny: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    human = describe_init(name, **scale_of(name))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["--dataset", str(tiny), "--hidden", "8", "--val-size", "30", *flags(name)]
    result = runner.invoke(cli, ["fit", *common, "--epochs", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    [run] = (tmp_path / "runs").iterdir()
    assert run.name.endswith(f"-relu-{describe_init(name, **scale_of(name), compact=True)}")
    assert f"network  8 relu, init {human}\n" in runner.invoke(cli, ["inspect", str(run)]).stdout
    dry = runner.invoke(cli, ["fit", *common, "--dry-run"]).stdout
    assert dry.startswith(f"dry run of 64-8-3 relu {human}, ")

    record = load_run(run)
    legend = curves_figure([record]).axes[1].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == [f"{run.name}: relu {human}"]
    assert filters_figure(record).get_suptitle().endswith(f"(relu {human})")
    config = build_config({"dataset": str(tiny), "hidden": [8], "val_size": 30, "init": name, **scale_of(name)})
    assert scan_init(config, load_dataset(tiny, str(tiny)), ["relu"], radii=[0.1]).yours == human
