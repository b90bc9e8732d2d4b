"""Property-based fault tests: hostile numbers at every numeric option, hostile files at every reader.

The options are read off the Click commands (``faultkit.numeric_options``), so a new option is tried
without a line here. Hypothesis runs derandomized (the same examples every time) with small example
counts, so the whole file stays within seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlptrain.cli import cli
from mlptrain.cli.types import FiniteFloat
from mlptrain.config import FIELDS
from mlptrain.configfile import load_config_file
from mlptrain.errors import ConfigError
from mlptrain.sweep.spec import load_spec

from faultkit import numeric_options, one_error

FAST = settings(max_examples=12, deadline=None, derandomize=True,
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
