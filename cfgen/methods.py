"""Counterfactual methods are plug-ins: a ``_target_`` class plus its own settings.

``cfgen/conf/method/<name>.yaml`` names the class (``_target_``, ``_partial_: true``) and holds
the method's settings; :func:`method_factory` is ``hydra.utils.instantiate`` of that node and
gives a partial called as ``factory(problem, schema, class_bounds)`` (one explainer per
actionability combination, built in the worker). A method class declares

* ``needs_bounds: ClassVar[bool]`` — whether the run mines class bounds for it;
* optionally ``settings: ClassVar[type]`` — a dataclass of its own keys (ranges in
  :func:`cfgen.config.setting` metadata); without one, its keys are checked against the keyword
  parameters of its ``__init__``.

Nothing else in cfgen lists method names: the run files say which method ran
(``summary.json``: ``method``, ``method_target``, ``uses_bounds``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, get_type_hints

from cfgen.errors import ConfigError

#: keys every method node has (Hydra's and cfgen's), not part of a method's own settings
BASE_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "name", "time_limit")
#: the arguments the run passes when it calls the factory
CALL_ARGS = ("self", "problem", "schema", "class_bounds")


def method_class(node: Mapping[str, Any], prefix: str = "method") -> type:
    """The class a method node's ``_target_`` names (one line if it cannot be imported)."""
    from hydra.utils import get_class

    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(
            f"{prefix}._target_ is missing: a method config names its class, e.g. "
            "_target_: cfgen.search.GeneticExplainer (see docs/extending.md)"
        )
    try:
        return get_class(target)
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import errors in several types
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"{prefix}._target_={target!r} cannot be imported: {str(cause).splitlines()[0]}"
        ) from None


def _check_signature(cls: type, own: Mapping[str, Any], prefix: str) -> None:
    from cfgen.config import _type_name, _type_ok, unknown_key

    init = cls.__dict__.get("__init__") or getattr(cls, "__init__")  # noqa: B009
    params = inspect.signature(init).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n in params if n not in CALL_ARGS and n not in BASE_KEYS]
    try:
        hints = get_type_hints(init)
    except Exception:  # noqa: BLE001 - unresolvable annotations: check names only
        hints = {}
    for key, value in own.items():
        if key not in allowed:
            raise unknown_key(prefix, str(key), allowed)
        tp = hints.get(key)
        if tp is not None and not _type_ok(value, tp):
            raise ConfigError(f"{prefix}.{key}={value!r} is not allowed: expected {_type_name(tp)}")


def check_method(node: Any, prefix: str = "method") -> type:
    """Validate a method node (base keys, then the class's own settings); return the class."""
    from cfgen.config import _plain, check_node

    node = _plain(node)
    if not isinstance(node, Mapping):
        raise ConfigError(
            f"{prefix}: expected a method config (a _target_ class and its settings), got {node!r}"
        )
    cls = method_class(node, prefix)
    name = node.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{prefix}.name={name!r} is not allowed: expected the method's name")
    limit = node.get("time_limit")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0
    ):
        raise ConfigError(
            f"{prefix}.time_limit={limit!r} is not allowed: expected seconds > 0 or null (no limit)"
        )
    own = {k: v for k, v in node.items() if k not in BASE_KEYS}
    schema = getattr(cls, "settings", None)
    if schema is not None:
        check_node(own, schema, prefix)
    else:
        _check_signature(cls, own, prefix)
    return cls


def method_factory(node: Any) -> functools.partial:
    """``instantiate(cfg.method)``: a partial called as ``factory(problem, schema, bounds)``."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from cfgen.config import _plain

    check_method(node)
    conf = OmegaConf.create(_plain(node))
    conf["_partial_"] = True
    conf["_convert_"] = "all"
    factory = instantiate(conf)
    if not isinstance(factory, functools.partial):
        raise ConfigError("method: instantiate did not give a partial (set _partial_: true)")
    return factory


def needs_bounds(factory: functools.partial) -> bool:
    """Whether the method built by ``factory`` uses class bounds."""
    return bool(getattr(factory.func, "needs_bounds", False))
