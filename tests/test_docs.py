"""The docs cannot drift from the code.

Every ``mlptrain …`` command line in README.md and docs/*.md (in fenced code blocks and in inline code)
must parse against the real Click commands, without running anything; the generated pages
(docs/cli.md, the tables of docs/config.md) must match what scripts/gen_docs.py writes now; every
command, config key and warning code must be documented; shell completion must produce a script.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from mlptrain.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- collecting command lines ------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"`([^`\n]+)`")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
EXPECT_ERROR = "<!-- docs-test: usage-error -->"  # on the line before a fence: its commands must be refused
PLACEHOLDER = re.compile(r"<([A-Za-z][\w .-]*)>")  # runs/<run>: a placeholder, not a redirection
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
REDIRECTS = {">", ">>", "<", ">&", "<&", "&>"}


@dataclass(frozen=True)
class CommandLine:
    """One ``mlptrain …`` invocation found in a docs file."""

    file: str
    line: int
    text: str
    args: tuple[str, ...]  # everything after ``mlptrain``
    expect_error: bool = False  # in a block marked as showing a usage error
    inline: bool = False  # in inline code, where `mlptrain eval` alone names the command

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def _shell_lines(text: str) -> list[tuple[int, str, bool, bool]]:
    """(line number, logical line, in a fenced block, in a usage-error block), continuations joined."""
    out, fenced, expect_error, pending, start, previous = [], False, False, "", 0, ""
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced, pending = not fenced, ""
            expect_error = fenced and previous.strip() == EXPECT_ERROR
        elif fenced and line.rstrip().endswith("\\"):
            pending, start = pending + line.rstrip()[:-1] + " ", start or number
        else:
            out.append((start or number, pending + line, fenced, expect_error))
            pending, start = "", 0
        previous = line
    return out


def _commands_in(shell: str) -> list[list[str]]:
    """The argument lists of every ``mlptrain`` command in one shell line (pipes, ``&&``, redirects)."""
    shell = shell.strip()
    if shell.startswith("$ "):
        shell = shell[2:]
    lexer = shlex.shlex(PLACEHOLDER.sub(r"\1", shell), posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: not a shell line
        return []
    segments, current, skip = [], [], False
    for token in tokens:
        if skip:
            skip = False
        elif token in OPERATORS:
            segments.append(current)
            current = []
        elif token in REDIRECTS:
            if current and current[-1].isdigit():
                current.pop()  # 2> file
            skip = True
        else:
            current.append(token)
    segments.append(current)
    found = []
    for words in segments:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]  # VAR=value mlptrain …
        if words and (words[0] == "mlptrain" or words[0].endswith("/mlptrain")):
            found.append(words[1:])
        elif len(words) > 2 and re.fullmatch(r"(\S*/)?python[\d.]*", words[0]) and words[1:3] == ["-m", "mlptrain"]:
            found.append(words[3:])  # python -m mlptrain …
    return found


def _elided(args: list[str]) -> tuple[str, ...]:
    """The arguments before an ellipsis (``mlptrain fit …``: the rest is left out on purpose)."""
    cut = next((i for i, arg in enumerate(args) if "…" in arg or arg == "..."), len(args))
    return tuple(args[:cut])


def _looks_like_command(text: str) -> bool:
    """A cheap filter before the shell parsing: does the line run mlptrain at all?"""
    return re.search(r"(^|[\s/])mlptrain(\s|$)", text) is not None


def collect(path: Path, root: Path = ROOT) -> list[CommandLine]:
    """Every mlptrain command line of a Markdown file: in fenced blocks, and inline code spans elsewhere."""
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    found = []
    for number, line, fenced, expect_error in _shell_lines(path.read_text(encoding="utf-8")):
        pieces = [line] if fenced else [m.group(1) for m in INLINE.finditer(line)]
        for piece in pieces:
            if not _looks_like_command(piece):
                continue
            for args in _commands_in(piece):
                found.append(CommandLine(name, number, piece.strip(), _elided(args), expect_error, not fenced))
    return found


# --- checking them against the Click commands --------------------------------------------


def parse_error(args: tuple[str, ...], naming: bool = False) -> str | None:
    """Why ``mlptrain ARGS`` would be refused by the parser (None: it parses); nothing runs.

    ``naming``: ARGS may also just name a command (``eval``, ``data list``) without its arguments.
    """
    command, name, rest, parent = cli, "mlptrain", list(args), None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            while isinstance(command, click.Group):
                position = next((i for i, arg in enumerate(rest) if not arg.startswith("-")), len(rest))
                own, rest = rest[:position], rest[position:]
                if not rest:  # `mlptrain`, `mlptrain data`, `mlptrain --version`: help or an eager option
                    parent = command.make_context(name, own or ["--help"], parent=parent)
                    return None
                parent = command.make_context(name, [*own, rest[0]], parent=parent)
                name, command, rest = command.resolve_command(parent, rest)
            if naming and not rest:
                return None
            command.make_context(name, rest, parent=parent)
    except click.exceptions.Exit as exc:  # --help, --version
        return None if exc.exit_code == 0 else f"exits with status {exc.exit_code}"
    except click.ClickException as exc:
        return exc.format_message()
    return None


def check_files(paths: list[Path], root: Path = ROOT) -> tuple[list[CommandLine], list[str]]:
    """All command lines of ``paths`` and a message for each one that does not parse."""
    lines = [line for path in paths for line in collect(path, root)]
    problems = []
    for line in lines:
        error = parse_error(line.args, naming=line.inline)
        if error and not line.expect_error:
            problems.append(f"{line.where()}\n    {error}")
        elif line.expect_error and not error:
            problems.append(f"{line.where()}\n    shown as a usage error ({EXPECT_ERROR}), but the CLI accepts it")
    return lines, problems


def test_every_documented_command_line_parses() -> None:
    lines, problems = check_files(DOC_FILES)
    assert not problems, "command lines in the docs that the CLI refuses:\n" + "\n".join(problems)
    files = {line.file for line in lines}
    assert "README.md" in files and "docs/cli.md" in files, files  # the collector sees the main pages
    assert len(lines) >= 40, len(lines)


def test_the_collector_catches_bad_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Prose with `mlptrain fit --epochz 3` inline, and `mlptrain eval RUN_DIR`, `mlptrain data list` fine.\n"
        "\n"
        "```console\n"
        "$ mlptrain fit --activation relu --epochs 3\n"
        "epoch 1/3  train loss 0.2766 (output: not a command)\n"
        "$ MLPTRAIN_MIRROR=/srv/mnist mlptrain fit \\\n"
        "    --activation maxout\n"
        "mlptrain eval runs/<run> --json > eval.json && .venv/bin/mlptrain inspect runs/<run>\n"
        ".venv/bin/mlptrain fitt --epochs 1 2>&1 | tee log\n"
        "python3 -m mlptrain data list --data-dirr d; pip install 'mlptrain[dask]'\n"
        "mlptrain data download --dataset nosuch\n"
        "mlptrain sweep spec.yaml --cluster remote  # a comment\n"
        "```\n"
        f"{EXPECT_ERROR}\n"
        "```console\n"
        "$ mlptrain fit --epoch 3\n"
        "Error: No such option '--epoch'.\n"
        "$ mlptrain fit --epochs 3\n"
        "```\n",
        encoding="utf-8",
    )
    lines, problems = check_files([page], tmp_path)
    assert [(line.line, line.args) for line in lines] == [
        (1, ("fit", "--epochz", "3")),
        (1, ("eval", "RUN_DIR")),
        (1, ("data", "list")),
        (4, ("fit", "--activation", "relu", "--epochs", "3")),
        (6, ("fit", "--activation", "maxout")),
        (8, ("eval", "runs/run", "--json")),
        (8, ("inspect", "runs/run")),
        (9, ("fitt", "--epochs", "1")),
        (10, ("data", "list", "--data-dirr", "d")),
        (11, ("data", "download", "--dataset", "nosuch")),
        (12, ("sweep", "spec.yaml", "--cluster", "remote")),
        (16, ("fit", "--epoch", "3")),
        (18, ("fit", "--epochs", "3")),
    ]
    assert len(problems) == 7, problems
    assert problems[0].startswith("page.md:1: mlptrain fit --epochz 3\n") and "--epochz" in problems[0]
    assert problems[1].startswith("page.md:6: ") and "maxout" in problems[1]
    assert "No such command 'fitt'" in problems[2] and "--data-dirr" in problems[3]
    assert "nosuch" in problems[4] and "remote" in problems[5]
    assert problems[6].startswith("page.md:18: ") and "accepts it" in problems[6]  # an error that is none


# --- the generated pages, and what must be in them ----------------------------------------
# (tests/test_cli.py checks that every command is in docs/cli.md with an Example in its --help,
# and that every config key is in docs/config.md's table)


def test_generated_pages_are_up_to_date() -> None:
    stale = _load_generator().stale_pages()
    assert not stale, (f"stale generated docs: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; "
                       "regenerate them with: make docs-gen")


# --- console blocks made by running their commands (scripts/docs_console.py) ----------------------


def _console():
    _load_generator()  # puts scripts/ on sys.path
    import docs_console

    return docs_console


def test_console_blocks_show_what_their_commands_print() -> None:
    _, stale = _load_generator().console_pages({}, kinds=("scratch",))
    assert not stale, f"console blocks that no longer show what their commands print: {', '.join(stale)}; " \
                      "regenerate them with: make docs-gen"
    marked = [page.name for page in DOC_FILES if _console().has_blocks(page.read_text(encoding="utf-8"))]
    assert {"README.md", "index.md", "completion.md"} <= set(marked), marked


@pytest.mark.realdata
def test_console_blocks_run_on_mnist_still_read_the_same() -> None:
    if _console().mnist_mirror() is None:
        pytest.skip(f"real MNIST not found in {_console().SHARED_DATA} (set MLPTRAIN_SHARED_DATA)")
    _, stale = _load_generator().console_pages({}, kinds=("mnist",))
    assert not stale, f"console blocks run on MNIST whose wording changed: {', '.join(stale)}; " \
                      "regenerate them with: make docs-gen"


def test_a_console_block_is_rewritten_when_its_output_changes(tmp_path: Path) -> None:
    console = _console()
    page = ("Text.\n\n<!-- docs-gen: console; before: printf 'batch_size: 0\\n' > my.yaml -->\n"
            "<!-- docs-test: usage-error -->\n```console\n$ cat my.yaml\nbatch_size: 1\n\n$ echo 'a 1.5'\na 1.5\n```\n"
            "<!-- docs-gen: console -->\n\n```console\n$ echo stale\n```\n"  # a blank line: the marker is not its
            "<!-- docs-gen: console -->\n```text\n$ echo stale\n```\n")  # not a console block
    text, stale = console.refresh(page, tmp_path, kinds=("scratch",))
    assert stale == [5] and text == page.replace("batch_size: 1", "batch_size: 0")
    assert console.refresh(text, tmp_path, kinds=("scratch",)) == (text, [])


def test_a_rewritten_excerpt_keeps_its_cut() -> None:
    step = _console().Step
    assert step("x", False, ["a", "  …", "z"]).lines(["1", "2", "3", "4"]) == ["$ x", "1", "  …", "4"]
    assert step("x", True, ["a", "b", "…"]).lines(["1", "2", "3", "4"]) == ["", "$ x", "1", "2", "…"]
    assert step("x", False, ["a", "…", "z"]).lines(["1", "2"]) == ["$ x", "1", "2"]  # nothing left to cut
    assert step("x", False, ["a"]).lines(["1", "2"]) == ["$ x", "1", "2"]


@pytest.mark.parametrize("shown, produced, exact, same", [
    (["$ x", "loss 0.25 acc 91.5%"], ["$ x", "loss 0.2501 acc 92%"], False, True),  # numbers are measured
    (["$ x", "loss 0.25 acc 91.5%"], ["$ x", "loss 0.2501 acc 92%"], True, False),  # unless output is exact
    (["$ x", "warning: use he-uniform"], ["$ x", "warning: use he-normal"], False, False),  # words are not
    (["$ x", "a", "  …", "d"], ["$ x", "a", "b", "c", "d"], True, True),  # an elision stands for any lines
    (["$ x", "a", "…", "d"], ["$ x", "a", "d"], True, True),
    (["$ x", "a", "…", "d"], ["$ x", "a", "b", "e"], True, False),
    (["$ x", "a"], ["$ x", "a", "b"], False, False),
    (["$ x", "  1  0.05    1.1"], ["$ x", "  1  0.05   25.3"], False, True),  # a wider number moves the columns
])
def test_what_a_console_blocks_check_compares(shown: list[str], produced: list[str], exact: bool, same: bool) -> None:
    assert _console().matches(shown, produced, exact) is same


def test_every_warning_code_is_in_the_diagnostics_page() -> None:
    from mlptrain.train.advice import WARNING_CODES

    codes = set(WARNING_CODES)
    assert len(codes) >= 10, codes
    page = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert not [code for code in codes if f"| `{code}` |" not in page]


def test_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local and not [t for t in local if not (ROOT / t).exists()]


# --- shell completion -----------------------------------------------------------------------


def _mlptrain_command() -> list[str]:
    """The installed entry point beside this Python (as in .venv/bin), else ``python -m mlptrain``."""
    script = Path(sys.executable).with_name("mlptrain")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlptrain"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_produces_a_script(shell: str) -> None:
    env = {**os.environ, "_MLPTRAIN_COMPLETE": f"{shell}_source"}
    done = subprocess.run(_mlptrain_command(), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "_mlptrain_completion" in done.stdout and "_MLPTRAIN_COMPLETE" in done.stdout
    assert done.stdout.count("\n") > 5


def test_completion_completes_commands() -> None:
    env = {**os.environ, "_MLPTRAIN_COMPLETE": "bash_complete", "COMP_WORDS": "mlptrain da", "COMP_CWORD": "1"}
    done = subprocess.run(_mlptrain_command(), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["plain,data"], done
