"""The classifier to explain: built from ``cfg.model`` (any ``_target_``), checked, fitted.

``model=<preset>`` picks a file of ``cfgen/conf/model/``; ``model._target_=pkg.Class`` with its
own keyword arguments builds anything else. A model must be a fitted single-output classifier
with ``predict_proba``; anything else gets one line naming ``model`` (:func:`check_classifier`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cfgen.errors import ConfigError

SUPPORTED = ("a fitted scikit-learn-compatible classifier with predict_proba and one output "
             "(e.g. a forest, boosted trees, XGBoost, LightGBM, or a Pipeline ending in one)")


def preprocessed(classifier: Any, categorical: Sequence[int] = (), scale: bool = True) -> Any:
    """A Pipeline for models that need it: one-hot encode the categorical codes (cfgen's
    encoded space), standardise the numeric columns (:class:`EncodedPrep`), then ``classifier``.

    The run passes ``categorical`` (the schema's categorical column positions), so the same
    preset works on every dataset.
    """
    from sklearn.pipeline import Pipeline

    from cfgen.prep import EncodedPrep

    steps: list[tuple[str, Any]] = []
    if len(categorical) or scale:
        steps.append(("prepare", EncodedPrep([int(j) for j in categorical], scale)))
    steps.append(("classifier", classifier))
    return Pipeline(steps)


#: the preset a bare ``model._target_=...`` starts from (``cfgen/conf/model/custom.yaml``)
CUSTOM = "custom"


def model_overrides(argv: Sequence[str]) -> list[str]:
    """Command-line overrides with the ``model`` node opened to any estimator's arguments.

    ``model._target_=pkg.Class`` without a ``model=<preset>`` starts from the empty preset
    ``model=custom`` (not from the default random forest's settings, which another class does
    not take; ``~model.<key>`` deletions of those settings are then moot and dropped), and
    ``model.<arg>=v`` becomes ``++model.<arg>=v`` (struct mode would refuse a keyword argument
    no preset declares). Misspelt arguments are still caught, with the estimator's own
    argument names, by :func:`check_model_config`.
    """
    bare = [a.lstrip("+~") for a in argv]
    chooses = any(b.startswith(("model=", "model@")) for b in bare)
    custom = not chooses and any(b.startswith("model._target_=") for b in bare)
    out = [f"model={CUSTOM}"] if custom else []
    for arg, b in zip(argv, bare, strict=True):
        if custom and arg.startswith("~model."):
            continue
        out.append(f"++{arg}" if arg == b and b.startswith("model.") and "=" in b else arg)
    return out


def check_model_config(node: Any) -> None:
    """The ``model`` node names a class or function to build (``_target_``), importable, and
    every other key is one of its keyword arguments (checked before any data is read)."""
    if isinstance(node, Mapping) and node.get("_target_") in ("???", None) \
            and "_target_" in node:
        raise ConfigError("model._target_ is missing: model=custom needs "
                          "model._target_=<dotted class> (and its arguments as model.<arg>=...)")
    if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
        raise ConfigError(f"model={node!r} is not allowed: expected model=<preset> (e.g. "
                          "random_forest, xgboost, logistic_regression) or a node with "
                          "model._target_=<dotted class> and its keyword arguments")
    _check_arguments(node, "model")


#: keys Hydra's instantiate reads itself
_HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")


def locate(path: str) -> Any:
    """The object a dotted path names (module, then attributes), quietly (Hydra's
    ``get_method`` logs an error of its own before raising)."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if cut == 1 or (exc.name and not ".".join(parts[:cut]).startswith(exc.name)):
                raise
            continue
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise ImportError(f"{'.'.join(parts[:cut])} has no {attr!r}") from None
        return obj
    raise ImportError(f"nothing to import in {path!r}")


def _check_arguments(node: Mapping[str, Any], prefix: str) -> None:
    """Every key of a ``_target_`` node (and of nested ones) is an argument of its target."""
    target = str(node["_target_"])
    try:
        fn = locate(target)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's target
        raise ConfigError(f"{prefix}._target_={target!r} cannot be imported: "
                          f"{str(exc).splitlines()[0]}") from None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return  # no signature to check against (a C extension): instantiate will tell
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL
             and n != "self"]
    for key, value in node.items():
        key = str(key)
        if key in _HYDRA_KEYS:
            continue
        if not takes_any and key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(
                f"{prefix}.{key} is not allowed: {target.rsplit('.', 1)[-1]} takes no argument "
                f"{key!r}" + (f" (did you mean {prefix}.{hint[0]}?)" if hint else "")
                + f"; its arguments: {', '.join(names) or '(none)'}")
        if isinstance(value, Mapping) and isinstance(value.get("_target_"), str):
            _check_arguments(value, f"{prefix}.{key}")


def build_estimator(model_cfg: Any, categorical: Sequence[int] = ()) -> Any:
    """Instantiate the (unfitted) estimator; ``categorical`` goes to targets that take it.

    A regressor, a model without ``predict_proba`` or a multi-output-only model is refused here,
    before fitting (its fit would fail with the library's own, less helpful message).
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    plain: Any = OmegaConf.to_container(model_cfg, resolve=True) \
        if OmegaConf.is_config(model_cfg) else model_cfg
    check_model_config(plain)
    target = str(plain["_target_"])
    extra: dict[str, Any] = {}
    try:
        fn = locate(target)
        if "categorical" in inspect.signature(fn).parameters:
            extra["categorical"] = list(categorical)
    except Exception:  # noqa: BLE001 - reported by instantiate below
        pass
    try:
        est = instantiate(model_cfg, **extra)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"model._target_={target!r} could not be built: {str(cause).splitlines()[0]}"
        ) from None
    check_kind(est, "model")
    return est


def final_step(model: Any) -> Any:
    """The estimator at the end of a Pipeline (the model itself otherwise)."""
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def check_kind(model: Any, arg: str = "model") -> None:
    """One line naming ``arg`` unless ``model`` (fitted or not) is a single-output classifier
    with ``predict_proba``: a regressor, a pipeline whose final step is not a classifier, a
    model without ``predict_proba`` and a multi-output-only wrapper are refused."""
    from sklearn.base import is_classifier, is_regressor

    name = type(model).__name__
    last = final_step(model)
    what = f"a Pipeline ending in {type(last).__name__}" if last is not model else name
    if is_regressor(last):
        raise ConfigError(f"{arg}: {what} is not a classifier (a regressor); expected "
                          f"{SUPPORTED}")
    if not is_classifier(last) and not hasattr(last, "classes_") \
            and not hasattr(last, "predict_proba"):
        raise ConfigError(f"{arg}: {what} is not a classifier; expected {SUPPORTED}")
    if not hasattr(model, "predict_proba"):
        raise ConfigError(f"{arg}: {name} has no predict_proba (cfgen needs class "
                          f"probabilities); expected {SUPPORTED}")
    if _multi_output_only(last):
        raise ConfigError(f"{arg}: {what} is a multi-output model; expected {SUPPORTED}")


def _multi_output_only(model: Any) -> bool:
    """scikit-learn's own tag: a wrapper like MultiOutputClassifier takes no single target."""
    from sklearn.utils import get_tags

    try:
        return get_tags(model).target_tags.single_output is False
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: no tags to read
        return False


def check_classifier(model: Any, arg: str = "model") -> None:
    """One line naming ``arg`` unless ``model`` is a fitted single-output classifier with
    ``predict_proba`` (:func:`check_kind`), fitted, with one output."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    check_kind(model, arg)
    name = type(model).__name__
    last = final_step(model)
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ConfigError(f"{arg}: {name} is not fitted; fit it first (expected {SUPPORTED})"
                          ) from None
    except TypeError:
        pass  # not a scikit-learn estimator: trust classes_ below
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ConfigError(f"{arg}: {name} has no classes_ (not fitted?); expected {SUPPORTED}")
    if isinstance(classes, list) or np.asarray(classes).ndim != 1 \
            or getattr(last, "n_outputs_", 1) != 1:
        raise ConfigError(f"{arg}: {name} is a multi-output model; expected {SUPPORTED}")
