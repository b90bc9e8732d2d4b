"""Domain errors raised below the CLI; ``cli.py`` turns them into one ``Error: …`` line.

Each class carries the process exit status the CLI uses for it, so the mapping
from failure kind to exit status lives in one place.
"""


class MlptrainError(Exception):
    """Base class for every error a user can cause or fix."""

    exit_code = 1


class ConfigError(MlptrainError):
    """A bad flag or config value: a usage error (exit status 2)."""

    exit_code = 2


class DataError(MlptrainError):
    """Missing, corrupt or malformed data files (exit status 1)."""


class DownloadError(DataError):
    """Every mirror failed for a data file (exit status 1)."""


class RunDirError(MlptrainError):
    """A run directory or weights file that cannot be used (exit status 1)."""


class DivergedError(MlptrainError):
    """The loss or the weights became NaN/inf: training stopped (exit status 1)."""

    def __init__(self, epoch: int, what: str) -> None:
        super().__init__(
            f"diverged in epoch {epoch}: {what}; lower --lr (e.g. by 10x), or add --max-norm or a --warmup-epochs"
        )
        self.epoch = epoch
