"""The model zoo: the report's networks, modern compact ones, ImageNet transfer models and a custom builder.

Importing this package registers every architecture (and the custom preprocessing layer saved models use).
Adding one: a module with a builder decorated by `register_model`, and its import line here.
"""

# Registration order is the order menus list the models in, hence no sorting here.
# isort: off
from galaxy_core.models import report, compact, p4m, applications, custom, ensemble  # noqa: F401  (registers the builders)

# isort: on
from galaxy_core.models.registry import ModelInfo, Recipe, create_model, list_models, model_info

__all__ = ["ModelInfo", "Recipe", "create_model", "list_models", "model_info"]
