"""What machine a benchmark ran on, for the headers of RESULTS.md and SPEED.md (mlptrain.threads.cpu_model)."""

from __future__ import annotations

from mlptrain.threads import cpu_model

__all__ = ["cpu_model"]
