"""Training runs: config, run store, training procedure, worker process, executors, the training service.

Queue and stop runs with galaxy_core.training.manager.JobManager (not imported here: the worker and the
supervisor run as `python -m` modules of this package, which must not be imported before they run).
"""

from galaxy_core.training.config import TrainConfig
from galaxy_core.training.store import CHECKPOINTS, Run, RunNotFoundError, RunState, RunStore, RunSummary

__all__ = ["CHECKPOINTS", "Run", "RunNotFoundError", "RunState", "RunStore", "RunSummary", "TrainConfig"]
