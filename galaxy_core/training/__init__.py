"""Training runs: config, run kinds, run store, training procedure, worker, executors, the training service.

Queue and stop runs with galaxy_core.training.client.ServiceClient (not imported here: the worker and the
supervisor run as `python -m` modules of this package, which must not be imported before they run).
"""

from galaxy_core.training.config import TrainConfig
from galaxy_core.training.lifecycle import RunState
from galaxy_core.training.records import RunSummary
from galaxy_core.training.store import CHECKPOINTS, Run, RunNotFoundError, RunStore

# The run kinds, registered with what readers of their runs need to know (RunSummary.traits): whoever reads a run
# through this package reads it with its kind's traits.
from galaxy_core.training import kinds  # noqa: F401  isort: skip

__all__ = ["CHECKPOINTS", "Run", "RunNotFoundError", "RunState", "RunStore", "RunSummary", "TrainConfig"]
