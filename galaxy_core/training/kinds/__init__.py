"""Run kinds: what a run does with its recipe (train a model, review a split's labels, ...).

Importing this package registers every kind. Adding one: a module with a function decorated by `register_kind`,
and its import line here.
"""

from galaxy_core.training.kinds import challenge_score, ensemble, label_review, seed_ensemble, train, transfer  # noqa: F401  (registers the kinds)
from galaxy_core.training.kinds.registry import RUN_KINDS, RunKind, check_run_config, describe_run_model, run_kind

__all__ = ["RUN_KINDS", "RunKind", "check_run_config", "describe_run_model", "run_kind"]
