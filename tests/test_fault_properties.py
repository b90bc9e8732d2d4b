"""Property-based fault tests: hostile numbers at every numeric option, hostile files at every reader.

The options are read off the Click commands (``faultkit.numeric_options``), so a new option is tried
without a line here. Hypothesis runs derandomized (the same examples every time) with small example
counts, so the whole file stays within seconds.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mlptrain.cli import cli
from mlptrain.cli.types import FiniteFloat
from mlptrain.config import FIELDS
from mlptrain.configfile import load_config_file
from mlptrain.errors import ConfigError
from mlptrain.sweep.spec import load_spec

from faultkit import numeric_options, one_error
from synthetic import write_dataset

FAST = settings(max_examples=5, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
OPTIONS = numeric_options()
HOSTILE = ["nan", "NaN", "inf", "-inf", "+inf", "Infinity", "1e400", "-1e400", "1e308", "-1e308", "0", "-0", "-1",
           "5e-324", "99999999999999999999999999999"]
# Text a user could type for a number: the hostile ones, any float Python prints, any integer.
NUMBERS = st.one_of(st.sampled_from(HOSTILE), st.floats().map(repr), st.integers(-10**30, 10**30).map(str))


def _key(option: click.Option) -> str | None:
    """The config key an option sets (fit and the tuning commands' config flags), else None."""
    return option.name if option.name in FIELDS else None


def _number(text: str, integer: bool) -> float | int | None:
    """``text`` read as Click reads a number of that kind, or None when it is not one."""
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return None


def _acceptable(option: click.Option, text: str) -> bool:
    """What the option's documented range (or its config key's) says about ``text``: the oracle."""
    integer = isinstance(option.type, click.types.IntParamType)
    value = _number(text, integer)
    if value is None or not math.isfinite(value):
        return False
    key = _key(option)
    if key is not None:
        try:
            FIELDS[key].parse(value)
        except ValueError:
            return False
        return True
    kind = option.type
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    below = low is not None and (value <= low if kind.min_open else value < low)
    above = high is not None and (value >= high if kind.max_open else value > high)
    return not (below or above)


def _arguments(path: tuple[str, ...], option: click.Option, text: str, where: Path) -> list[str]:
    """The command line: the option under test, and a placeholder for every other required parameter."""
    command = cli
    for word in path:
        command = command.get_command(None, word)
    line = [*path, f"{option.opts[0]}={text}"]  # "=" so that "-1" is a value, not an option
    for param in command.params:
        if param is option or not param.required:
            continue
        if isinstance(param, click.Argument):
            line.append(str(where / param.name))
        else:
            line += [param.opts[0], str(where / param.name)]
    return line


def test_every_float_option_takes_finite_numbers_only() -> None:
    floats = [(path, o.name) for path, o in OPTIONS if isinstance(o.type, click.types.FloatParamType)]
    assert len(floats) > 20, floats  # the tuning commands' own and the config flags of four commands
    wrong = [(path, o.name) for path, o in OPTIONS
             if isinstance(o.type, click.types.FloatParamType) and not isinstance(o.type, FiniteFloat)]
    assert wrong == []


@pytest.mark.parametrize("path, option", OPTIONS, ids=[f"{' '.join(p)} {o.opts[0]}" for p, o in OPTIONS])
@given(text=NUMBERS)
@example(text="nan")
@example(text="inf")
@example(text="-1e400")
@FAST
def test_random_numbers_at_every_numeric_option(path: tuple[str, ...], option: click.Option, text: str,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """A number outside the option's range is exit 2 and one line naming it; one inside gets through parsing."""
    where = tmp_path_factory.getbasetemp() / "numbers"
    line = _arguments(path, option, text, where)
    if _acceptable(option, text):
        command = cli
        for word in path:
            command = command.get_command(None, word)
        command.make_context(path[-1], line[len(path):])  # parses and converts; runs nothing
        return
    result = CliRunner().invoke(cli, line)
    assert result.exit_code == 2, (line, result.output)
    one_error(result, option.opts[0])
    assert not where.exists() or not any(where.iterdir())  # refused before anything was written


FLOAT_KEYS = [key for key, field in FIELDS.items() if field.kind is float]
YAML_NUMBERS = st.one_of(st.sampled_from([".nan", ".NaN", ".inf", "-.inf", "+.inf", ".Inf", "1e400", "-1e400",
                                          "1.0e+400", "0x10", "1_000"]),
                         st.floats().map(repr))


def _yaml_value(path: Path, key: str) -> object:
    return load_config_file(path).get(key)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@given(text=YAML_NUMBERS)
@example(text=".nan")
@example(text="-.inf")
@FAST
def test_config_files_and_sweep_specs_refuse_non_finite_numbers(key: str, text: str,
                                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """A float key written as YAML (``.nan``, ``.inf``, ``1e400``) in a config file, a sweep's base or its grid."""
    where = tmp_path_factory.mktemp("yaml")
    config = where / "c.yaml"
    config.write_text(f"{key}: {text}\n")
    value = _yaml_value(config, key)
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    spec_texts = [f"base: {{{key}: {text}}}\nseeds: 2\n", f"grid: {{{key}: [{text}]}}\nseeds: 2\n"]
    for spec_text in spec_texts:
        spec = where / "s.yaml"
        spec.write_text(spec_text)
        if not finite:
            with pytest.raises(ConfigError, match=key):
                load_spec(spec)
    if not finite:
        from mlptrain.config import build_config

        with pytest.raises(ConfigError, match=f"invalid {key}"):
            build_config({key: value})


# --- hostile bytes and damaged records at every file reader ------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run (augmented, evaluated), the same cut after epoch 1, a two-trial sweep and an input image."""
    root = tmp_path_factory.mktemp("readers")
    tiny = write_dataset(root / "tiny")
    runner = CliRunner()
    args = ["--dataset", str(tiny), "--hidden", "8", "--val-size", "30", "--batch-size", "32", "--init", "he-normal",
            "--threads", "1", "--quiet"]
    assert runner.invoke(cli, ["fit", *args, "--epochs", "1", "--augment", "shift", "--out",
                               str(root / "partial")]).exit_code == 0
    os.replace(root / "partial" / "state.npz", root / "partial" / "checkpoint.npz")  # as if cut: resumable
    for name in ("summary.json", "weights.npz"):
        (root / "partial" / name).unlink()
    config = root / "partial" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    assert runner.invoke(cli, ["fit", *args, "--epochs", "2", "--augment", "shift", "--out",
                               str(root / "run")]).exit_code == 0
    assert runner.invoke(cli, ["eval", str(root / "run"), "--quiet"]).exit_code == 0
    spec = root / "spec.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), "hidden": [4], "epochs": 1, "val_size": 30,
                                         "init": "he-normal"}, "grid": {"lr": [0.05, 0.1]}}))
    assert runner.invoke(cli, ["sweep", str(spec), "--out", str(root / "sweep"), "--workers", "1", "--threads", "1",
                               "--quiet"]).exit_code == 0
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "digit.png")
    return root


# (the file, the directory holding it, the command that reads it)
READERS = [
    ("weights.npz", "run", ["predict", "{dir}", "{root}/digit.png"]),
    ("weights.npz", "run", ["eval", "{dir}", "--dataset", "{root}/tiny", "--quiet"]),
    ("state.npz", "run", ["fit", "--resume", "{dir}", "--epochs", "3", "--quiet", "--threads", "1"]),
    ("checkpoint.npz", "partial", ["fit", "--resume", "{dir}", "--quiet", "--threads", "1"]),
    ("augmented.npz", "run", ["plot", "{dir}"]),
    ("config.yaml", "run", ["inspect", "{dir}"]),
    ("config.yaml", "partial", ["fit", "--resume", "{dir}", "--quiet", "--threads", "1"]),
    ("metrics.jsonl", "run", ["inspect", "{dir}"]),
    ("summary.json", "run", ["inspect", "{dir}"]),
    ("summary.json", "run", ["fit", "--resume", "{dir}", "--epochs", "3", "--quiet", "--threads", "1"]),
    ("eval.json", "run", ["inspect", "{dir}"]),
    ("diagnostics.json", "partial", ["inspect", "{dir}"]),
    ("results.jsonl", "sweep", ["plot", "{dir}"]),
    ("sweep.json", "sweep", ["plot", "{dir}"]),
    ("sweep.json", "sweep", ["sweep", "{root}/spec.yaml", "--out", "{dir}", "--quiet", "--workers", "1"]),
    ("input.npy", "root", ["predict", "{root}/run", "{dir}/input.npy"]),
    ("input.png", "root", ["predict", "{root}/run", "{dir}/input.png"]),
    ("t10k-images-idx3-ubyte", "root", ["predict", "{root}/run", "{dir}/t10k-images-idx3-ubyte"]),
]


@st.composite
def damaged(draw: st.DrawFn, original: bytes, name: str) -> bytes:
    """Random bytes, the original cut short, or (for JSON, YAML and .npz) the original with one part changed."""
    kind = draw(st.sampled_from(["bytes", "cut", "changed"]))
    if kind == "bytes" or not original:
        return draw(st.binary(max_size=300))
    if kind == "cut":
        return original[:draw(st.integers(0, len(original) - 1))]
    if name.endswith(".npz"):
        return _changed_npz(draw, original)
    if name.endswith((".json", ".jsonl", ".yaml")):
        return _changed_record(draw, original, name)
    return draw(st.binary(max_size=300))


def _changed_npz(draw: st.DrawFn, original: bytes) -> bytes:
    with np.load(io.BytesIO(original)) as npz:
        arrays = {key: npz[key] for key in npz.files}
    key = draw(st.sampled_from(sorted(arrays)))
    if draw(st.booleans()):
        del arrays[key]
    else:
        dtype = draw(st.sampled_from(["<f4", "<f8", "<i8", "|u1", "<U3", "|b1"]))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        arrays[key] = draw(hnp.arrays(np.dtype(dtype), tuple(shape)))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _changed_record(draw: st.DrawFn, original: bytes, name: str) -> bytes:
    """One value somewhere in the record (a random path down from the top) replaced, or one key dropped."""
    import yaml

    lines = name.endswith(".jsonl")
    records = ([json.loads(line) for line in original.decode().splitlines()] if lines else
               [yaml.safe_load(original) if name.endswith(".yaml") else json.loads(original)])
    index = draw(st.integers(0, len(records) - 1))
    holder, key = None, None
    value: Any = records
    key = index
    holder = records
    while isinstance(value := holder[key], (dict, list)) and value and draw(st.booleans()):
        holder, key = value, draw(st.sampled_from(sorted(value) if isinstance(value, dict) else range(len(value))))
    if isinstance(holder, dict) and draw(st.booleans()):
        del holder[key]
    else:
        holder[key] = draw(JSON_VALUES)
    if name.endswith(".yaml"):
        return yaml.safe_dump(records[0]).encode()
    return "".join(json.dumps(r) + "\n" for r in records).encode() if lines else json.dumps(records[0]).encode()


@pytest.mark.parametrize("name, where, command", READERS, ids=[f"{n} by {c[0]}" for n, _, c in READERS])
@given(data=st.data())
@settings(max_examples=int(os.environ.get("HUNT", 8)), deadline=None, derandomize="HUNT" not in os.environ,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_damaged_files_are_one_line_naming_them(runs: Path, tmp_path_factory: pytest.TempPathFactory, name: str,
                                                where: str, command: list[str], data: st.DataObject) -> None:
    """Whatever the file holds, the command ends with a result or one Error: line naming the file (or its run),
    never a traceback."""
    work = tmp_path_factory.mktemp("damaged")  # {dir}: a copy of the directory holding the file; {root}: read only
    directory = work if where == "root" else Path(shutil.copytree(runs / where, work / where))
    target = directory / name
    original = (runs / where / name).read_bytes() if (runs / where / name).exists() else b""
    target.write_bytes(data.draw(damaged(original, name)))
    line = [arg.format(dir=directory, root=runs) for arg in command]
    result = CliRunner().invoke(cli, line)
    assert result.exception is None or isinstance(result.exception, SystemExit), (line, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (line, result.output)
    if result.exit_code:
        error = one_error(result)
        assert name in error or str(directory) in error, error
    shutil.rmtree(work)
