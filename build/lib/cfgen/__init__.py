"""cfgen: counterfactual explanations for tree ensembles, found by a bound-guided DEAP search.

``from cfgen import explain, CounterfactualExplainer`` is the library API (``cfgen.api``),
imported lazily so that ``import cfgen`` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["CounterfactualExplainer", "CounterfactualResult", "explain"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cfgen import api

        return getattr(api, name)
    raise AttributeError(f"module 'cfgen' has no attribute {name!r}")
