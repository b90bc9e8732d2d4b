"""Entry point for ``python -m mlptrain``."""

from mlptrain.cli import main

main()
