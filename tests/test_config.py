"""Config loading, validation and the flag/file merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlptrain.config import FIELDS, Config, build_config, default_init, merge, parse_hidden
from mlptrain.configfile import load_config_file, resolve_config
from mlptrain.data.datasets import DATASETS
from mlptrain.errors import ConfigError
from mlptrain.nn.activations import ACTIVATIONS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_valid_and_round_trip() -> None:
    config = build_config({})
    assert config == Config()
    assert build_config(config.to_dict()) == config


@pytest.mark.parametrize(
    "value, expected",
    [("256,256", (256, 256)), ([64], (64,)), (32, (32,)), ("", ()), (0, ()), ([], ()), ("0", ())],
)
def test_hidden_forms(value, expected) -> None:
    assert parse_hidden(value) == expected


BAD_VALUES = [
    ("lr", -0.1), ("lr", 0), ("lr", "fast"), ("lr", float("nan")), ("lr", True), ("lr", [0.1]),
    ("momentum", 1.0), ("momentum", -0.5),
    ("batch_size", 0), ("batch_size", 1.5), ("batch_size", "128"),
    ("epochs", 0), ("epochs", -3), ("val_size", -1), ("seed", -1), ("seed", 2**64),
    ("hidden", "256,0,10"), ("hidden", [256, -1]), ("hidden", "a,b"), ("hidden", [True]),
    ("init_range", 0), ("init_range", -0.5), ("init_std", 0),
    ("activation", "maxout"), ("init", "orthogonal"), ("dtype", "float16"), ("optimizer", "lbfgs"),
    ("dataset", ""), ("dataset", 3),
]


@pytest.mark.parametrize("key, value", BAD_VALUES)
def test_bad_values_name_the_key(key: str, value) -> None:
    with pytest.raises(ConfigError, match=f"invalid {key}") as info:
        build_config({key: value}, {key: "my.yaml"})
    assert "my.yaml" in str(info.value)


def test_null_only_where_optional() -> None:
    assert build_config({"init": None}).init is None
    with pytest.raises(ConfigError, match="invalid lr"):
        build_config({"lr": None})


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'epoch'.*did you mean 'epochs'"):
        build_config({"epoch": 3})
    with pytest.raises(ConfigError, match="unknown config key 'xyz'.*known keys: dataset, hidden"):
        build_config({"xyz": 3})


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_default_init_follows_activation_family(activation: str) -> None:
    config = default_init(build_config({"activation": activation}))
    expected = "he-normal" if ACTIVATIONS[activation].family == "relu" else "glorot-uniform"
    assert config.init == expected


def test_init_range_alone_means_uniform_and_std_alone_means_normal() -> None:
    assert build_config({"init_range": 0.5}).init == "uniform"
    assert build_config({"init_std": 0.1}).init == "normal"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"init": "uniform"}, "needs init_range"),
        ({"init": "normal"}, "needs init_std"),
        ({"init": "he-normal", "init_range": 0.1}, "applies only to init 'uniform'"),
        ({"init_range": 0.1, "init_std": 0.1}, "not both"),
    ],
)
def test_inconsistent_init_settings(values, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(values)


def test_init_flags_replace_the_files_init_group() -> None:
    merged = merge({"init": "he-normal", "lr": 0.1}, {"init_range": 0.5})
    assert build_config(merged).init == "uniform"
    assert merged["lr"] == 0.1


def test_alias_is_stored_canonically() -> None:
    assert build_config({"activation": "sigmoid"}).activation == "logistic"


def test_yaml_file_keys_may_use_hyphens(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("init-range: 0.5\nactivation: relu\nhidden: [64, 32]\n")
    values = load_config_file(path)
    assert build_config(values).hidden == (64, 32)


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: [0.1\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("init_range: 1\ninit-range: 2\n", "given twice"),
        ("1: 2\n", "is not a string"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(tmp_path / "nope.yaml")


def test_every_field_has_help() -> None:
    assert all(field.help for field in FIELDS.values())


@pytest.mark.parametrize("path", sorted(set(CONFIGS.glob("*.yaml")) - set(CONFIGS.glob("sweep-*.yaml"))
                                        - set(CONFIGS.glob("search-*.yaml"))),
                         ids=lambda p: p.name)  # sweep-*.yaml, search-*.yaml: specs, checked in test_sweep*.py
def test_shipped_configs_are_valid(path: Path) -> None:
    values = load_config_file(path)
    config = default_init(build_config(values, {key: path.name for key in values}))
    assert config.dataset in DATASETS, f"{path.name} names no data set of the table: {config.dataset!r}"
    assert config.init is not None and build_config(config.to_dict()) == config  # as a run stores and rereads it


# --- resolve_config: the one way from a config file and flags to a Config ----------------------------------


def test_resolve_config_layers_base_then_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.2\nhidden: [8]\ninit: he-uniform\n")
    base = {"lr": 0.3, "epochs": 4, "momentum": 0.5, "init": "glorot-normal"}
    resolved = resolve_config(str(path), {"momentum": 0.7, "seed": None, "epochs": None}, base=base,
                              base_source="run.yaml")
    config = resolved.config
    assert (config.lr, config.hidden, config.epochs, config.momentum) == (0.2, (8,), 4, 0.7)
    assert config.init == "he-uniform" and not resolved.init_defaulted
    assert resolved.sources == {"lr": str(path), "hidden": str(path), "init": str(path), "epochs": "run.yaml",
                                "momentum": "--momentum"}  # seed was not given: None is a flag left unset


def test_resolve_config_init_flags_replace_the_files_init_as_a_group(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("init: he-normal\n")
    resolved = resolve_config(path, {"init_range": 0.5})
    assert (resolved.config.init, resolved.config.init_range) == ("uniform", 0.5)
    assert "init" not in resolved.sources and resolved.sources["init_range"] == "--init-range"


def test_resolve_config_says_when_it_chose_the_init() -> None:
    resolved = resolve_config(flags={"activation": "tanh"})
    assert resolved.init_defaulted and resolved.config == default_init(build_config({"activation": "tanh"}))
    assert resolve_config("relu").sources["activation"].endswith("relu.yaml")  # a shipped config, by name


@pytest.mark.parametrize("config, flags, message", [
    ("sweep-init-scale", {}, "sweep-init-scale is a sweep spec, not a run config: run it with mlptrain sweep"),
    (None, {"lr": -1.0}, "invalid lr (from --lr)"),
    (None, {"dataset": "fashion"}, "--dataset 'fashion' is neither a known data set"),
    ("c.yaml", {}, ": dataset 'kmnst' is neither a known data set"),
    ("nope.yaml", {}, "cannot read config file"),
])
def test_resolve_config_errors_name_where_the_value_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              config: str | None, flags: dict, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("dataset: kmnst\n")
    with pytest.raises(ConfigError) as error:
        resolve_config(config, flags)
    assert message in str(error.value)
