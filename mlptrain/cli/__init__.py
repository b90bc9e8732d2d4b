"""The command line: a thin Click shell over the library, and the only part that knows the terminal.

One module per command or command group (``fit``, ``evaluate`` for eval and
inspect, ``plot``, ``sweep``, ``data``), the options and the error boundary they
share in ``common``, and the group that registers them in ``main``. Commands
import the library lazily, inside the command, so ``mlptrain --help`` stays fast.

May import: every other part of mlptrain. Nothing imports ``mlptrain.cli``.
"""

from mlptrain.cli.main import cli, main

__all__ = ["cli", "main"]
