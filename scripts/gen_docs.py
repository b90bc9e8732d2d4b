"""Write the generated docs pages from the code itself, so they cannot drift from it.

    python scripts/gen_docs.py           rewrite docs/cli.md and the generated tables of the other pages
    python scripts/gen_docs.py --check   exit 1, naming the stale files, when they differ from the code

docs/cli.md is generated whole from the Click commands (usage, help text, examples,
options with their defaults, choices and environment variables). docs/config.md, docs/data.md and the
others in MARKED_PAGES are hand-written prose with generated tables between marker lines:

    <!-- BEGIN GENERATED: fields -->  …  <!-- END GENERATED: fields -->

filled from ``mlptrain.config.FIELDS``, the tables in ``mlptrain/nn`` (the activations' ONNX forms
included), ``DATASETS``, ``CAUSES`` and the package's docstring. The ```console blocks of README.md and
docs/*.md marked ``<!-- docs-gen: console -->`` are made by running their commands (scripts/docs_console.py
says how). ``make docs-gen`` runs this script; tests/test_docs.py fails when the committed pages are stale.
Standard library, Click and mlptrain only: no docs dependency is needed to generate.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

ROOT = Path(__file__).resolve().parents[1]
CLI_PAGE = ROOT / "docs" / "cli.md"
CONFIG_PAGE = ROOT / "docs" / "config.md"
# Hand-written pages with generated tables:
MARKED_PAGES = [CONFIG_PAGE, ROOT / "docs" / "data.md", ROOT / "docs" / "augmentation.md", ROOT / "docs" / "predict.md",
                ROOT / "docs" / "diagnostics.md", ROOT / "docs" / "development.md",
                ROOT / "docs" / "sweeps.md"]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # where console blocks may be
REGENERATE = "make docs-gen"  # what the staleness test tells you to run
WIDTH = 100  # fixed help width, so the page does not depend on the terminal

# --- docs/cli.md: the Click commands ---------------------------------------------------------


def walk(command: click.Command, chain: tuple[tuple[str, click.Command], ...] = ()
         ) -> Iterator[list[tuple[str, click.Command]]]:
    """Every command and subcommand, depth first, as the chain of (name, command) from ``mlptrain`` down."""
    chain = chain or (("mlptrain", command),)
    yield list(chain)
    if isinstance(command, click.Group):
        for name, sub in _subcommands(command).items():
            yield from walk(sub, chain + ((name, sub),))


def _subcommands(group: click.Group) -> dict[str, click.Command]:
    """A group's commands, the lazily imported ones included (``mlptrain.cli.common.Group``)."""
    from mlptrain.cli.common import Group

    return group.all_commands() if isinstance(group, Group) else dict(group.commands)


def _context(chain: list[tuple[str, click.Command]]) -> click.Context:
    """A context chain like the real invocation's: usage reads ``mlptrain data verify``, ``-h`` is inherited."""
    ctx = None
    for name, command in chain:
        ctx = click.Context(command, info_name=name, parent=ctx, terminal_width=WIDTH, max_content_width=WIDTH,
                            **command.context_settings)
    return ctx


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip())]


def _help_markdown(help_text: str) -> list[str]:
    """Click help text as Markdown: plain paragraphs as prose, ``\\b`` blocks (the examples) as code."""
    out = []
    for paragraph in _paragraphs(help_text):
        lines = paragraph.splitlines()
        if lines[0].strip() == "\b":
            title, body = lines[1].strip(), [line.strip() for line in lines[2:]]
            out += [f"**{title}**", "", "```sh", *body, "```", ""]
        else:
            out += [" ".join(line.strip() for line in lines), ""]
    return out


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return ""
    if isinstance(param.type, click.Choice):
        return ""  # listed as choices
    return param.make_metavar(ctx)


def _option_line(param: click.Option, ctx: click.Context) -> str:
    """One bullet: the flag spellings and metavar, then help, choices, default and environment variable."""
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    metavar = _metavar(param, ctx)
    head = f"{names} `{metavar}`" if metavar else names
    help_text = " ".join((param.help or "").split())
    facts = []
    if isinstance(param.type, click.Choice):
        facts.append("one of: " + ", ".join(f"`{c}`" for c in param.type.choices))
    if param.show_default and param.default not in (None, False, (), []):
        default = param.show_default if isinstance(param.show_default, str) else param.default  # text for a callable
        default = ", ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        facts.append(f"default: `{default}`")
    envvar = param.envvar if isinstance(param.envvar, str) else None
    if envvar and envvar not in help_text:
        facts.append(f"env: `{envvar}`")
    line = f"- {head}: {help_text}" if help_text else f"- {head}"
    return line + (f" ({'; '.join(facts)})" if facts else "")


def _command_section(chain: list[tuple[str, click.Command]]) -> list[str]:
    ctx = _context(chain)
    path, command = [name for name, _ in chain], chain[-1][1]
    level = "#" * min(len(path) + 1, 4)
    out = [f"{level} {' '.join(path)}", "", "```text", command.get_usage(ctx), "```", ""]
    out += _help_markdown(command.help or "")
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    if arguments:
        out += ["Arguments: " + ", ".join(f"`{p.make_metavar(ctx)}`" for p in arguments), ""]
    if isinstance(command, click.Group):
        out += ["Subcommands:", ""]
        out += [f"- `{' '.join(path)} {name}`: {sub.get_short_help_str(WIDTH)}"
                for name, sub in _subcommands(command).items()]
        out.append("")
    if options:
        out += ["Options:", ""] + [_option_line(p, ctx) for p in options] + [""]
    return out


def render_cli() -> str:
    """The whole of docs/cli.md."""
    from mlptrain.cli import cli

    out = [
        "<!-- Generated by scripts/gen_docs.py from the Click commands; do not edit. "
        f"Regenerate: {REGENERATE} -->",
        "",
        "# Command reference",
        "",
        "Every command and subcommand of `mlptrain`, generated from the commands themselves (the same text "
        "as each command's `--help`). Every command takes `-h`/`--help`; `python -m mlptrain` works like "
        "`mlptrain`. Exit statuses and error messages are described in [the overview](index.md#exit-statuses); "
        "the config keys behind `fit`'s flags in [Configuration](config.md).",
        "",
    ]
    for chain in walk(cli):
        out += _command_section(chain)
    return "\n".join(out).rstrip("\n") + "\n"


# --- docs/config.md: the config keys and the nn tables ---------------------------------------


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


class _NotAValue:
    """Fed to a key's parser to make it state what it accepts (its ValueError message)."""


def _allowed(parse: Callable) -> str:
    try:
        parse(_NotAValue())
    except ValueError as exc:
        return str(exc)
    return "any value"


def fields_table() -> list[str]:
    from mlptrain.config import FIELDS, Config

    defaults = Config().to_dict()
    rows = []
    for key, field in FIELDS.items():
        flag = key.replace("_", "-")
        flag = f"`--{flag}/--no-{flag}`" if field.kind is bool else f"`--{flag}`"
        default = defaults[key]
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        shown = "none" if default is None else f"`{shown}`"
        allowed = _allowed(field.parse) + (", or null" if field.optional else "")
        rows.append([flag, f"`{key}`", shown, allowed, field.help])
    return _table(["flag", "config key", "default", "allowed", "meaning"], rows)


def activations_table() -> list[str]:
    from mlptrain.nn.activations import ACTIVATIONS, ALIASES
    from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY

    rows = []
    for name, act in ACTIVATIONS.items():
        aliases = ", ".join(f"`{a}`" for a, target in sorted(ALIASES.items()) if target == name) or ""
        rows.append([f"`{name}`", aliases, act.description, act.family, f"`{DEFAULT_INIT_FOR_FAMILY[act.family]}`",
                     "yes" if act.can_die else "no"])
    return _table(["activation", "aliases", "function", "family", "default init", "units can die"], rows)


class _OnnxExpression:
    """An ``OnnxGraph`` that writes each node as a call on its inputs: the row's ONNX form as one expression."""

    def node(self, op: str, inputs: list[str], **attributes: float) -> str:
        return f"{op}({', '.join([*inputs, *(f'{key}={value:g}' for key, value in attributes.items())])})"

    def constant(self, value: float) -> str:
        return f"{value:.7g}"  # float32 keeps about 7 digits


def onnx_table() -> list[str]:
    from mlptrain.infer.onnx import OPSET
    from mlptrain.nn.activations import ACTIVATIONS

    rows = [[f"`{name}`", f"`{act.onnx_form(_OnnxExpression(), 'x')}`"] for name, act in ACTIVATIONS.items()]
    return _table(["activation", f"ONNX nodes (opset {OPSET}) on the layer's pre-activation x"], rows)


def initializers_table() -> list[str]:
    from mlptrain.nn.initializers import INITIALIZERS

    rows = []
    for name, init in INITIALIZERS.items():
        if init.parameter:
            variance = f"set by `{init.parameter}`"
        else:
            fan = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "((fan_in + fan_out) / 2)"}[init.mode]
            variance = f"{init.scale:g} / {fan}"
        rows.append([f"`{name}`", init.distribution, variance, init.description])
    return _table(["init", "distribution", "variance", "description"], rows)


def _first_line(obj: object) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def optimizers_table() -> list[str]:
    from mlptrain.nn.optimizers import DECOUPLED_DECAY, OPTIMIZERS

    rows = [[f"`{name}`", _first_line(factory), "decoupled from the gradient" if name in DECOUPLED_DECAY
             else "L2, added to the gradient"] for name, factory in OPTIMIZERS.items()]
    return _table(["optimizer", "update rule", "weight_decay"], rows)


def schedules_table() -> list[str]:
    from mlptrain.nn.schedules import SCHEDULES

    return _table(["lr_schedule", "lr of epoch t (after warm-up)"],
                  [[f"`{name}`", _first_line(function)] for name, function in SCHEDULES.items()])


def datasets_table() -> list[str]:
    from mlptrain.data.datasets import DATASETS

    rows = []
    for name, spec in DATASETS.items():
        size = sum(f.size for f in spec.files) / 1e6
        checksum = "SHA-256" if all(f.sha256 for f in spec.files) else "MD5"
        mirrors = "<br>".join(f"`{m}`" for m in spec.mirrors)
        rows.append([f"`{name}`", spec.description, f"{size:.1f} MB", checksum, mirrors])
    return _table(["--dataset", "description", "four .gz files", "verified by", "mirrors, tried in order"], rows)


def formats_table() -> list[str]:
    from mlptrain.data.formats import FORMATS

    rows = [[f"`{f.name}`", f.layout.replace("<", "&lt;"), f"`--dataset {f.example}`"] for f in FORMATS.values()]
    return _table(["format", "what --dataset PATH holds (tried in this order)", "example"], rows)


def augmentations_table() -> list[str]:
    from mlptrain.data.augment import AUGMENTATIONS

    rows = []
    for name, entry in AUGMENTATIONS.items():
        params = "<br>".join(f"`{key}` {p.default:g} ({p.low:g} to {p.high:g}): {p.help}"
                             for key, p in entry.params.items())
        prepared = "ahead, on a spare core" if entry.threadable else "in line (it calls BLAS)"
        rows.append([f"`{name}`", entry.help, params, prepared])
    return _table(["augment", "what it does", "parameters: default (range)", "prepared"], rows)


def causes_table() -> list[str]:
    from mlptrain.train.advice import CAUSES
    from mlptrain.train.causes import RULES

    return _table(["cause", "what it means", "decided by"],
                  [[f"`{name}`", cause.meaning, RULES[name]] for name, cause in CAUSES.items()])


def layers_block() -> list[str]:
    """The package's parts, bottom to top, as ``mlptrain/__init__.py``'s docstring lists them."""
    import mlptrain

    parts = [line[4:] for line in mlptrain.__doc__.splitlines() if line.startswith("    ") and line.strip()]
    return ["```text", *parts, "```"]


def search_table() -> list[str]:
    from mlptrain.sweep.space import DISTRIBUTIONS, PRUNERS, SAMPLERS

    rows = [[f"`{name}: ...`", "distribution", text] for name, text in DISTRIBUTIONS.items()]
    rows += [[f"`sampler: {name}`", "sampler", text] for name, text in SAMPLERS.items()]
    rows += [[f"`pruner: {name}`", "pruner", text] for name, text in PRUNERS.items()]
    return _table(["in the spec", "kind", "what it does"], rows)


TABLES: dict[str, Callable[[], list[str]]] = {
    "causes": causes_table,
    "layers": layers_block,
    "search": search_table,
    "augmentations": augmentations_table,
    "datasets": datasets_table,
    "fields": fields_table,
    "activations": activations_table,
    "onnx": onnx_table,
    "initializers": initializers_table,
    "optimizers": optimizers_table,
    "schedules": schedules_table,
    "formats": formats_table,
}
_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (\w+) -->\n).*?(<!-- END GENERATED: \2 -->)", re.S)


def render_marked(page: Path, text: str) -> str:
    """A page with every generated block refilled; a marker naming no table is an error."""
    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"{page}: no generated table named {name!r}; known: {', '.join(TABLES)}")
        return match.group(1) + "\n".join(TABLES[name]()) + "\n" + match.group(3)

    return _BLOCK.sub(fill, text)


# --- writing and checking -------------------------------------------------------------------------


def expected_pages() -> dict[Path, str]:
    """Each page with generated tables and the text it should have now (console blocks aside)."""
    pages = {CLI_PAGE: render_cli()}
    for page in MARKED_PAGES:
        pages[page] = render_marked(page, page.read_text(encoding="utf-8"))
    return pages


def stale_pages() -> list[Path]:
    return [path for path, text in expected_pages().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def _console():
    """scripts/docs_console.py, beside this script (which may be loaded from a file, as the tests do)."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    import docs_console

    return docs_console


CONSOLE_KINDS = ("scratch", "mnist", "slow")


def console_pages(pages: dict[Path, str], kinds: tuple[str, ...] = CONSOLE_KINDS
                  ) -> tuple[dict[Path, str], list[str]]:
    """``pages`` (path -> text; the other pages read from disk) with their console blocks of ``kinds``
    refreshed, and ``page:line`` of each stale block (see scripts/docs_console.py)."""
    import tempfile

    console = _console()
    texts = {path: pages.get(path) or path.read_text(encoding="utf-8") for path in [*pages, *PAGES]}
    out, stale = dict(pages), []
    with tempfile.TemporaryDirectory(prefix="mlptrain-docs-") as scratch:
        for path, text in texts.items():
            if console.has_blocks(text):
                out[path], lines = console.refresh(text, Path(scratch), kinds)
                stale += [f"{path.relative_to(ROOT)}:{line}" for line in lines]
    return out, stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages (exit 1 if any)")
    parser.add_argument("--no-console", action="store_true", help="leave the console blocks alone (fast)")
    parser.add_argument("--no-slow", action="store_true", help="leave the console blocks that train alone")
    args = parser.parse_args(argv)
    pages, stale_blocks = expected_pages(), []
    if not args.no_console:  # the slow blocks train: regenerated, never checked
        kinds = ("scratch", "mnist") if args.check or args.no_slow else CONSOLE_KINDS
        pages, stale_blocks = console_pages(pages, kinds)
    if args.check:
        stale = [path for path, text in pages.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (regenerate: {REGENERATE})", file=sys.stderr)
        for where in stale_blocks:
            print(f"stale console block: {where}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in pages.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)  # never a half-written page
            print(f"wrote {path.relative_to(ROOT)}")
    if not args.no_console and _console().mnist_mirror() is None:
        print(f"real MNIST not found in {_console().SHARED_DATA} (set MLPTRAIN_SHARED_DATA): the console blocks "
              "run on it were left as they are", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
