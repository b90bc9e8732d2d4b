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


class MissingDependency(MlptrainError):
    """An optional package the command needs is not installed; the message says how to install it (exit 1)."""


class DivergedError(MlptrainError):
    """The loss or the weights became NaN/inf: training stopped (exit status 1)."""

    def __init__(self, epoch: int, what: str, advice: str, cause: str | None = None,
                 evidence: dict | None = None) -> None:
        super().__init__(f"diverged in epoch {epoch}: {what}; {advice}")
        self.epoch = epoch
        self.cause, self.evidence = cause, evidence or {}  # the cause and its evidence (train.advice)


class InvalidResult(MlptrainError):
    """A computation whose result would mean nothing (NaN, infinite, nothing compared): said instead (exit 1)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception by the CLI so that it unwinds like Ctrl-C."""


class RunInterrupted(MlptrainError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) during training; the run can be resumed."""

    def __init__(self, run_dir: object, epochs_done: int, terminated: bool) -> None:
        name = "SIGTERM" if terminated else "Ctrl-C"
        where = f"after epoch {epochs_done}, whose checkpoint" if epochs_done else "before the first epoch ended; it"
        super().__init__(
            f"interrupted by {name} {where} is in {run_dir}; continue with: mlptrain fit --resume {run_dir}"
        )
        self.exit_code = 143 if terminated else 130


class SweepError(MlptrainError):
    """A sweep cannot run where it was asked to: Dask missing, scheduler unreachable (exit status 1)."""


class SweepInterrupted(MlptrainError):
    """Ctrl-C (exit 130) or SIGTERM (exit 143) during a sweep; the same command resumes it."""

    def __init__(self, sweep_dir: object, finished: int, total: int, terminated: bool) -> None:
        name = "SIGTERM" if terminated else "Ctrl-C"
        super().__init__(
            f"sweep interrupted by {name}: {finished} of {total} trials are recorded in {sweep_dir}; "
            "run the same command again to continue (finished trials are skipped, unfinished ones resume)"
        )
        self.exit_code = 143 if terminated else 130


class RunDirInUse(RunDirError):
    """Another live process holds the run or sweep directory's lock (exit status 2, like a taken --out)."""

    exit_code = 2

    def __init__(self, message: str, pid: object = None) -> None:
        super().__init__(message)
        self.pid = pid
