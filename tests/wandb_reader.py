"""Reading a W&B offline run back (history, summary, config, files): only the tests need it.

It replays the ``Record`` protobufs of the ``.wandb`` file (:func:`cfgen.tracking._records`, which
cfgen itself uses to know when an offline run is complete on disk).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfgen.tracking import _records, wait_until_complete


def _apply(target: dict, item, remove: bool = False) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    if not keys:
        return
    node = target
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            return
    if remove:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = json.loads(item.value_json)


def find_offline_runs(run_dir: str | Path) -> list[Path]:
    """The offline W&B run folders under a cfgen run directory, oldest first."""
    return sorted(Path(run_dir).glob("wandb/offline-run-*"))


def read_offline_run(path: str | Path, wait: float = 10.0) -> dict[str, Any]:
    """What a W&B run logged, read back from its ``.wandb`` file (no server needed).

    ``path`` is the ``.wandb`` file, its ``offline-run-*`` folder, or a cfgen run directory (its
    latest offline run); up to ``wait`` seconds are spent waiting for a run that is still being
    written to reach its exit record. Returns ``{"id", "project", "group", "job_type", "name",
    "tags", "config", "summary", "history", "artifacts", "files", "exit_code"}``; ``history`` is
    a list of logged rows (dicts), ``summary`` the final summary.
    """
    path = Path(path)
    if path.is_dir() and not path.name.startswith(("offline-run-", "run-")):
        runs = find_offline_runs(path)
        if not runs:
            raise FileNotFoundError(f"no offline W&B run under {path}/wandb")
        path = runs[-1]
    if path.is_dir():
        files = sorted(path.glob("*.wandb"))
        if not files:
            raise FileNotFoundError(f"no .wandb file in {path}")
        path = files[0]
    if wait > 0:
        wait_until_complete(path.parent, timeout=wait)
    out: dict[str, Any] = {
        "config": {},
        "summary": {},
        "history": [],
        "artifacts": [],
        "files": [],
        "tags": [],
        "exit_code": None,
    }
    for rec in _records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(
                id=r.run_id,
                project=r.project,
                entity=r.entity,
                group=r.run_group,
                job_type=r.job_type,
                name=r.display_name,
                tags=list(r.tags),
            )
            for item in r.config.update:
                _apply(out["config"], item)
        elif kind == "config":
            for item in rec.config.update:
                _apply(out["config"], item)
            for item in rec.config.remove:
                _apply(out["config"], item, remove=True)
        elif kind == "summary":
            for item in rec.summary.update:
                _apply(out["summary"], item)
            for item in rec.summary.remove:
                _apply(out["summary"], item, remove=True)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in rec.history.item:
                _apply(row, item)
            out["history"].append(row)
        elif kind == "artifact":
            a = rec.artifact
            out["artifacts"].append(
                {"name": a.name, "type": a.type, "files": [c.path for c in a.manifest.contents]}
            )
        elif kind == "files":
            out["files"].extend(f.path for f in rec.files.files)
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    out["config"].pop("_wandb", None)
    return out
