"""The paper's datasets: where each comes from, which ship with cfgen, and the dataset config.

Files whose licence allows redistribution ship here as ``<name>.csv.gz`` (package data); the
others are read from ``$CFGEN_DATA_DIR`` or a ``dataset.file`` path, and asking for one that is
not there names where to obtain it (:func:`missing_file_message`). docs/datasets.md has the table.

Imports stay light (no pandas): ``cfgen.config`` imports this module at CLI start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, Sequence

from omegaconf import OmegaConf

HERE = Path(__file__).resolve().parent
DATA_DIR_ENV = "CFGEN_DATA_DIR"


class Source(NamedTuple):
    """Provenance of one dataset file."""

    origin: str  # where the data comes from (and, for imbalanced-learn copies, the original)
    url: str  # where to obtain it
    licence: str
    shipped: bool  # a compressed copy is in this package


_IMBLEARN = "imbalanced-learn benchmark (Zenodo record 61452, Ding 2011)"
_UCI = "CC BY 4.0 (UCI Machine Learning Repository)"

SOURCES: dict[str, Source] = {
    "abalone": Source(f"UCI Abalone, via the {_IMBLEARN}",
                      "https://archive.ics.uci.edu/dataset/1/abalone", _UCI, True),
    "ecoli": Source(f"UCI Ecoli, via the {_IMBLEARN}",
                    "https://archive.ics.uci.edu/dataset/39/ecoli", _UCI, True),
    "german_credit": Source("UCI Statlog (German Credit Data), named columns",
                            "https://archive.ics.uci.edu/dataset/144", _UCI, True),
    "libras_move": Source(f"UCI Libras Movement, via the {_IMBLEARN}",
                          "https://archive.ics.uci.edu/dataset/181/libras+movement", _UCI, True),
    "satimage": Source(f"UCI Statlog (Landsat Satellite), via the {_IMBLEARN}",
                       "https://archive.ics.uci.edu/dataset/146", _UCI, True),
    "us_crime": Source(f"UCI Communities and Crime, via the {_IMBLEARN}",
                       "https://archive.ics.uci.edu/dataset/183/communities+and+crime", _UCI,
                       True),
    "mammography": Source(
        f"Woods et al. (1993), courtesy of A. Lazarevic, via the {_IMBLEARN}",
        "https://www.openml.org/d/310 or imblearn.datasets.fetch_datasets()",
        "not stated (not a UCI dataset, whatever the benchmark table says)", False),
    "yeast_ml8": Source(f"Elisseeff & Weston (2001) multi-label yeast, via the {_IMBLEARN}",
                        "imblearn.datasets.fetch_datasets() (LIBSVM multi-label data)",
                        "not stated", False),
    "diabetes": Source("Pima Indians Diabetes (NIDDK), Kaggle uciml/pima-indians-diabetes-database",
                       "https://www.kaggle.com/datasets/uciml/pima-indians-diabetes-database",
                       "as listed on Kaggle; not confirmed, so not redistributed", False),
    "customer_personality_analysis": Source(
        "Kaggle imakash3011/customer-personality-analysis (marketing_campaign.csv)",
        "https://www.kaggle.com/datasets/imakash3011/customer-personality-analysis",
        "as listed on Kaggle; not confirmed, so not redistributed", False),
    "healthcare_dataset_stroke": Source(
        "Kaggle fedesoriano/stroke-prediction-dataset (healthcare-dataset-stroke-data.csv)",
        "https://www.kaggle.com/datasets/fedesoriano/stroke-prediction-dataset",
        "confidential source, 'Data files (c) Original Authors': not redistributable", False),
    "education_dataset": Source("unknown (a synthetic-looking student pass/fail table)",
                                "the paper authors' data folder", "unknown", False),
    "energy_dataset": Source("unknown (a synthetic-looking energy anomaly table)",
                             "the paper authors' data folder", "unknown", False),
}


def shipped_file(file: str) -> Path | None:
    """The packaged copy of ``file`` (``<file>.gz`` here), or None."""
    name = Path(file).name
    for candidate in (HERE / name, HERE / f"{name}.gz"):
        if name and candidate.is_file() and candidate.name.endswith(".csv.gz"):
            return candidate
    return None


def missing_file_message(name: str, file: str) -> str:
    """One line: the file is not shipped; where to get it and how to point cfgen at it."""
    src = SOURCES.get(name)
    where = f" (licence: {src.licence}); obtain it from {src.url}" if src else ""
    return (f"dataset.file={file!r} for dataset {name!r} does not ship with cfgen{where}, then "
            f"set {DATA_DIR_ENV}=<directory holding {Path(file).name}> or "
            f"dataset.file=<path to the file>")


# ----------------------------------------------------------------------------- config


def file_stem(path: str | None) -> str:
    """``path/to/my data.csv.gz`` → ``my_data``: a run name from a file name."""
    if not path:
        return "csv"
    name = Path(str(path)).name
    for ext in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        name = name.removesuffix(ext)
    stem = Path(name).stem or "csv"
    return re.sub(r"[^\w.-]+", "_", stem).strip("_") or "csv"


def path_safe(text: str) -> str:
    """One directory name from a sweep's override string: ``method/ga=quick`` would otherwise
    nest a job's run directory one level deeper."""
    return str(text).replace("/", "-")


def register_resolvers() -> None:
    """``${cfgen.stem:...}`` for conf/dataset/csv.yaml (the run is named after the file) and
    ``${cfgen.path_safe:...}`` for sweep job directories."""
    if not OmegaConf.has_resolver("cfgen.stem"):
        OmegaConf.register_new_resolver("cfgen.stem", file_stem)
    if not OmegaConf.has_resolver("cfgen.path_safe"):
        OmegaConf.register_new_resolver("cfgen.path_safe", path_safe)


OPEN_DICTS = ("dataset.actionability.", "dataset.ranges.")


def open_dict_overrides(argv: Sequence[str]) -> list[str]:
    """``dataset.actionability.Age=x`` → ``++dataset.actionability.Age=x`` (same for ranges).

    Struct mode refuses new keys in a ``Dict[str, ...]`` node without Hydra's ``+``; these two
    maps are keyed by the data's own columns, so a user cannot be expected to know which keys the
    dataset file already declares. ``++`` adds or overrides either way.
    """
    out = []
    for arg in argv:
        bare = arg.lstrip("~+")
        if arg == bare and "=" in arg and arg.startswith(OPEN_DICTS):
            arg = f"++{arg}"
        out.append(arg)
    return out
