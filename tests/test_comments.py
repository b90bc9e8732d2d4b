"""The package's comments and docstrings say why, not when or on which machine.

Timings of one machine and references to the tracker's history go stale as soon
as the code or the machine changes; they belong in docs/performance.md or
benchmarks/NOTES.md, beside their date, command and CPU.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlptrain"
STALE = {
    "a timing": re.compile(r"\d(?:[\d.,]*)\s?(?:µs|us|ms|ns)\b|\d\.\d+\s?s\b"),
    "a CPU model": re.compile(r"\b(?:EPYC|Xeon|Ryzen|Core i\d|Skylake|Haswell|Zen ?\d)\b"),
    "the tracker's history": re.compile(r"\bissue\s+#?\d+", re.IGNORECASE),
    "one machine": re.compile(r"\b(?:on|of) the \d+-core\b|\btest machine\b"),
}


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in ``source``."""
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return found


def stale_phrases(source: str) -> list[str]:
    """``line N: a timing: '...'`` for every comment or docstring that dates itself."""
    return [f"line {line}: {what}: {match.group(0)!r}" for line, text in prose(source)
            for what, pattern in STALE.items() for match in pattern.finditer(text)]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_comments_hold_no_timings_cpus_or_history(path: Path) -> None:
    found = stale_phrases(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name}: move these to benchmarks/NOTES.md or docs/: {found}"


@pytest.mark.parametrize("source", [
    "x = 1  # 12.9 vs 5.7 us for 128x256\n",
    "def f():\n    '''Measured on the 2-core EPYC.'''\n",
    "# see issue 16\n",
    "# took 1.1 of the command's 3.6 s\n",
])
def test_the_check_catches_stale_comments(source: str) -> None:
    assert stale_phrases(source)


def test_strings_that_are_not_comments_are_left_alone() -> None:
    assert not stale_phrases("message = 'took 5 ms on the EPYC'\n")
