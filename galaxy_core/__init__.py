"""Galaxy CNN Lab's library: datasets, models, training runs and explanations, without any UI."""

__version__ = "0.1.0"
