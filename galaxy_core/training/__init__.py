"""Training runs: config, run store, the metrics callback, the worker process and the job manager."""

from galaxy_core.training.config import TrainConfig
from galaxy_core.training.manager import JobManager
from galaxy_core.training.store import ACTIVE_STATES, STATES, Run, RunNotFoundError, RunStore

__all__ = ["ACTIVE_STATES", "STATES", "JobManager", "Run", "RunNotFoundError", "RunStore", "TrainConfig"]
