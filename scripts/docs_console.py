"""The console blocks of the docs, made by running their commands (used by scripts/gen_docs.py).

A ```console block is generated when one of the HTML comments right above its fence is

    <!-- docs-gen: console -->              scratch: run in a scratch directory; the output must match exactly
    <!-- docs-gen: console mnist -->        mnist: run on real MNIST; only the words must match, and the
                                            numbers measured for the page are kept while they do
    <!-- docs-gen: console mnist slow -->   slow: as mnist, but it trains: regenerated, never checked
    <!-- docs-gen: console; before: CMD --> (any kind) run the shell command CMD first, unseen

Every ``$ `` line of a block is run by bash in a scratch directory of its page and kind (the blocks of one
page and kind share it, in order) with this checkout's mlptrain; what it prints (stdout and stderr
together, as a terminal shows them) replaces the lines up to the next ``$ `` line. A line ``…`` in a
block stands for any number of output lines, so a block may show an excerpt. A scratch directory holds
``tiny/``, a small synthetic IDX data set (tests/synthetic.py), and its own data cache, ``data/``; mnist
and slow blocks get the shared MNIST files as their mirror, and are left alone when those are missing
(``MLPTRAIN_SHARED_DATA``, default ``../shared/data``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MLPTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
KINDS = ("scratch", "mnist", "slow")
MARKER = re.compile(r"^<!-- docs-gen: console(?P<kind> mnist(?: slow)?)?(?:; before: (?P<before>.*?))? -->$")
ELISION = "…"
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?")
COLUMNS = 100  # the terminal width the commands see, as for docs/cli.md
TIMEOUT = 900


@dataclass(frozen=True)
class Block:
    """One generated console block: its lines (0-based, ``start`` to ``end`` exclusive) and how to run it."""

    start: int
    end: int
    kind: str  # one of KINDS
    before: str | None

    @property
    def real_data(self) -> bool:
        return self.kind != "scratch"


def find_blocks(lines: list[str]) -> list[Block]:
    """Every marked ```console block of a page (its lines split on newlines)."""
    found, inside, marker, start = [], False, None, 0
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside and marker:
                kind = {None: "scratch", " mnist": "mnist", " mnist slow": "slow"}[marker.group("kind")]
                found.append(Block(start, number, kind, marker.group("before")))
            if inside or stripped != "```console":
                marker = None
            inside, start = not inside, number + 1
        elif not inside:
            match = MARKER.match(stripped)
            marker = match or (marker if stripped.startswith("<!--") else None)
    return found


@dataclass
class Step:
    """One ``$ `` line of a block: the command (continuation lines joined), whether a blank line sets it
    apart from the output before it, and the output lines the page shows for it."""

    command: str
    blank: bool
    shown: list[str]

    def lines(self, printed: list[str]) -> list[str]:
        """The step as the page should show it now: with ``printed``, cut the way the page cut the output
        when it shows one excerpt (``…`` once): as many lines before it and after it."""
        cuts = [i for i, line in enumerate(self.shown) if line.strip() == ELISION]
        if len(cuts) == 1:
            head, tail = cuts[0], len(self.shown) - cuts[0] - 1
            if len(printed) > head + tail:
                printed = printed[:head] + [self.shown[head]] + printed[len(printed) - tail:]
        return [""] * self.blank + ["$ " + self.command] + printed


def steps(lines: list[str]) -> list[Step]:
    """A block's lines as steps (output before the first ``$ `` line is not kept)."""
    out: list[Step] = []
    pending = None
    for number, line in enumerate(lines):
        if pending is not None:
            pending.command += "\n" + line
        elif line.startswith("$ "):
            pending = Step(line[2:], number > 0 and not lines[number - 1].strip(), [])
        elif out and not (line == "" and number + 1 < len(lines) and lines[number + 1].startswith("$ ")):
            out[-1].shown.append(line)
        if pending is not None and not pending.command.endswith("\\"):
            out.append(pending)
            pending = None
    return out


def mnist_mirror() -> Path | None:
    """The shared MNIST directory, or None when it is not there."""
    mnist = SHARED_DATA / "mnist"
    return mnist if (mnist / "train-images-idx3-ubyte.gz").is_file() else None


class Scratch:
    """A scratch directory, and commands run in it."""

    def __init__(self, directory: Path, real_data: bool) -> None:
        if str(ROOT / "tests") not in sys.path:
            sys.path.insert(0, str(ROOT / "tests"))
        from synthetic import write_dataset

        self.directory, self.real_data = directory, real_data
        write_dataset(directory / "tiny")

    def run(self, command: str, check: bool = False) -> str:
        """What ``command`` prints, without the final newline; ``check``: RuntimeError when it fails."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("MLPTRAIN_")}
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
                   COLUMNS=str(COLUMNS), MLPTRAIN_DATA_DIR=str(self.directory / "data"))
        if self.real_data:
            env["MLPTRAIN_MIRROR"] = str(mnist_mirror())
        done = subprocess.run(["bash", "-c", command], cwd=self.directory, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        if check and done.returncode != 0:
            raise RuntimeError(f"{command!r} failed in {self.directory} (exit {done.returncode}):\n{done.stdout}")
        return done.stdout.rstrip("\n")


def run_block(scratch: Scratch, block: Block, lines: list[str]) -> tuple[list[str], bool]:
    """The block's lines as they should read now, and whether that differs from the page: a step whose
    output still matches is kept as the page shows it (its numbers too, on real data), one that does not
    is rewritten, cut the way the page cut it."""
    if block.before:
        scratch.run(block.before, check=True)  # its output is not shown, so a failure must not pass unseen
    out, stale = [], False
    for step in steps(lines[block.start:block.end]):
        printed = scratch.run(step.command)
        printed_lines = printed.splitlines() if printed else []
        if matches(step.shown, printed_lines, exact=not block.real_data):
            out += step.lines(step.shown)
        else:
            out += step.lines(printed_lines)
            stale = True
    return out, stale


def masked(text: str) -> str:
    """``text`` with every number replaced by ``#`` and every run of blanks by one: what the check of a
    block run on MNIST compares (a number of another width moves the columns of a table)."""
    return " ".join(NUMBER.sub("#", text).split())


def matches(shown: list[str], produced: list[str], exact: bool) -> bool:
    """Whether the page's lines agree with the produced ones (``…`` lines standing for any lines)."""
    def prepare(line: str) -> str:
        return line if exact else masked(line)

    pattern = "".join(r"(?:.*\n)*?" if line.strip() == ELISION else re.escape(prepare(line) + "\n")
                      for line in shown)
    return re.fullmatch(pattern, "".join(prepare(line) + "\n" for line in produced)) is not None


def refresh(text: str, scratch_root: Path, kinds: tuple[str, ...] = KINDS) -> tuple[str, list[int]]:
    """A page with its stale console blocks of ``kinds`` rewritten, and the line numbers of their fences.

    Blocks on real data are run only when it is there. A block that matches what its commands print is
    kept as the page shows it.
    """
    lines = text.split("\n")
    runnable = set(kinds) if mnist_mirror() is not None else set(kinds) & {"scratch"}
    scratches: dict[bool, Scratch] = {}
    stale, new_lines, done = [], [], 0
    for block in (b for b in find_blocks(lines) if b.kind in runnable):
        if block.real_data not in scratches:
            directory = Path(tempfile.mkdtemp(dir=scratch_root))
            scratches[block.real_data] = Scratch(directory, block.real_data)
        produced, changed = run_block(scratches[block.real_data], block, lines)
        new_lines += lines[done:block.start] + produced
        stale += [block.start] * changed
        done = block.end
    return "\n".join(new_lines + lines[done:]), stale


def has_blocks(text: str) -> bool:
    return bool(find_blocks(text.split("\n")))
