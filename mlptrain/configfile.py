"""Config files, and the one way in for a config: defaults, a base, a config file and flags -> a Config.

Every config and sweep spec goes through the same strict YAML reading. The
configs that come with mlptrain (``mlptrain/configs/*.yaml``, installed with
the package) are found by name from anywhere, so ``--config
original-problem`` works in an installed copy as in the checkout. A file on
disk always wins over a shipped config of the same name.

``resolve_config`` is what every command calls (fit, its resume, the tuning
commands); a sweep spec layers its ``config:`` file, ``base:`` and grid points
through the same ``resolve_layers``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from mlptrain.config import Config, build_config, default_init, merge, normalize_key
from mlptrain.data.formats import check_dataset
from mlptrain.errors import ConfigError

SHIPPED_SUFFIX = ".yaml"
# Config values, and where they came from: one name for them all (a file's path) or one per key (``--lr``).
Layer = tuple[Mapping[str, Any], Union[str, Mapping[str, str]]]


@dataclass(frozen=True)
class Resolved:
    """A validated config; whether its init was chosen from the activation (a command may say so); and where
    each key's value came from (a file's path, ``--lr``, ...; keys left at their default are absent)."""

    config: Config
    init_defaulted: bool
    sources: dict[str, str]


def flag_name(key: str) -> str:
    """The command-line flag of a config key: ``init_range`` -> ``--init-range``."""
    return "--" + key.replace("_", "-")


def resolve_config(config: str | Path | None = None, flags: Mapping[str, Any] | None = None,
                   base: Mapping[str, Any] | None = None, *, base_source: str = "the base config",
                   relative_to: Path | None = None) -> Resolved:
    """The config a command runs: the defaults, then ``base``, then the ``config`` file, then ``flags``.

    ``config`` is a file (relative to ``relative_to`` when given) or a shipped
    config's name; ``flags`` maps config keys to values, None meaning not
    given, each named ``--key`` in messages. The rest is ``resolve_layers``.
    """
    layers: list[Layer] = [(base or {}, base_source)]
    if config:  # None or "": no file
        path, values = read_config_file(config, relative_to)
        layers.append((values, str(path)))
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    layers.append((given, {key: flag_name(key) for key in given}))
    return resolve_layers(layers)


def resolve_layers(layers: Sequence[Layer]) -> Resolved:
    """The defaults, then each layer over the ones before it (init keys replace the earlier init settings as a
    group, see ``config.merge``); validated, the data set checked, and the init chosen from the activation when
    none was given. ConfigError naming the key and where its value came from."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer, where in layers:
        values = merge(values, layer)
        sources |= {key: where if isinstance(where, str) else where[key] for key in layer}
    sources = {key: source for key, source in sources.items() if key in values}
    built = build_config(values, sources)
    check_dataset(built.dataset, _named("dataset", sources.get("dataset")))
    return Resolved(default_init(built), built.init is None, sources)


def _named(key: str, source: str | None) -> str:
    """A key's value as messages name it: ``--dataset``, ``spec.yaml grid: dataset``, or just ``dataset``."""
    if source is None:
        return key
    return source if source.startswith("--") else f"{source}: {key}"


def read_config_file(config: str | Path, relative_to: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The run config file ``config`` names (see ``find_config``) and its keys; ConfigError for a sweep spec."""
    path = find_config(config, relative_to)
    values = load_config_file(path)
    if is_sweep_spec(values):
        raise ConfigError(f"{config} is a sweep spec, not a run config: run it with mlptrain sweep {config}")
    return path, values


def shipped_configs() -> dict[str, Path]:
    """Name -> path of every config and sweep spec that ships with mlptrain, sorted by name."""
    folder = resources.files("mlptrain") / "configs"
    found = {Path(str(entry)).stem: Path(str(entry)) for entry in folder.iterdir()
             if entry.name.endswith(SHIPPED_SUFFIX)}
    return dict(sorted(found.items()))


def find_config(text: str | Path, relative_to: Path | None = None) -> Path:
    """The file ``--config TEXT`` means: a file on disk (relative to ``relative_to`` when given), else the
    shipped config of that name (``relu`` or ``relu.yaml``); ConfigError listing the shipped ones otherwise."""
    path = Path(text).expanduser()
    on_disk = relative_to / path if relative_to is not None and not path.is_absolute() else path
    if on_disk.exists():
        return on_disk
    if path.parent not in (Path("."), Path("configs")):  # a path elsewhere names a file, not a shipped config
        raise ConfigError(f"cannot read config file {on_disk}: no such file")
    try:
        return shipped_config(path.name)
    except ConfigError as exc:
        raise ConfigError(f"cannot read config file {on_disk}: no such file, and {exc}") from None


def shipped_config(name: str) -> Path:
    """The shipped config called ``name`` (``.yaml`` optional); ConfigError listing them otherwise."""
    shipped = shipped_configs()
    key = name[: -len(SHIPPED_SUFFIX)] if name.endswith(SHIPPED_SUFFIX) else name
    if key not in shipped:
        close = difflib.get_close_matches(key, list(shipped), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"no shipped config is called {name!r}; {hint}shipped: {', '.join(shipped)}")
    return shipped[key]


def describe_config(path: Path) -> tuple[str, str]:
    """(``run`` or ``sweep``, the first sentence of the file's leading comment) for ``mlptrain configs list``."""
    text = path.read_text(encoding="utf-8")
    return ("sweep" if is_sweep_spec(load_config_file(path)) else "run"), first_sentence(leading_paragraph(text))


def leading_paragraph(text: str) -> str:
    """The comment lines a YAML file opens with, joined, up to a blank ``#`` line, an indented line or the
    ``mlptrain …`` line that shows how to use it."""
    words = []
    for line in text.splitlines():
        body = line[1:] if line.startswith("#") else None
        if body is None or not body.strip() or body.startswith("  ") or body.strip().startswith("mlptrain "):
            break
        words.append(body.strip())
    return " ".join(words)


def first_sentence(text: str) -> str:
    """``text`` up to the first ``.``, ``?`` or ``!`` followed by a space (or the end): all of it if none."""
    import re

    match = re.match(r"(.*?[.?!])(\s|$)", text)
    return match.group(1) if match else text


def is_sweep_spec(values: dict[str, Any]) -> bool:
    """Whether a config file's keys are a sweep spec's (``mlptrain sweep``) rather than a run config's."""
    return "grid" in values or "search" in values


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config into a dict with normalized keys; ConfigError on any problem."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_reason(exc)}") from None
    try:
        data = yaml.load(text, Loader=_config_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values, got {type(data).__name__}")
    return _normalized(data, path)


def _config_loader() -> type:
    """PyYAML's SafeLoader, stricter about keys and kinder to numbers.

    It refuses a key given twice (PyYAML would keep the last silently) and reads
    ``1e-3`` as a number, as YAML 1.2 and every flag do (YAML 1.1 wants ``1.0e-3``).
    """
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return Loader


def _normalized(data: dict[Any, Any], path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"config file {path}: key {key!r} is not a string")
        name = normalize_key(key)
        if name in values:
            raise ConfigError(f"config file {path}: key {name!r} is given twice")
        values[name] = value
    return values


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
