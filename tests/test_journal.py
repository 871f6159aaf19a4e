"""The journal and the run directory: nothing finished is lost, nothing untrusted is run, one run
per directory, and a failed write is one line that leaves the run resumable.

Faults are real: bytes flipped in a real journal file, a pickle whose unpickling would create a
file, a lock held by another live (then SIGKILLed) process, ``/dev/full`` (ENOSPC), an
``RLIMIT_FSIZE`` (EFBIG), an immutable directory (``chattr +i`` as root, mode 555 otherwise).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAST, compose_config

from cfgen import records, rundir
from cfgen.data import load_dataset
from cfgen.errors import ConfigError
from cfgen.experiment import run
from cfgen.explanation import Explanation
from cfgen.journal import DAMAGED, JOURNAL_DIR, MANIFEST, RECORDS, Journal, read_records
from cfgen.plan import Combinations, plan_tasks
from cfgen.records import RecordError, UntrustedJournal, scan_records
from cfgen.rundir import OutputError, RunDirBusy, RunDirError
from cfgen.runner import TaskResult, WorkerContext, run_tasks

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


# ---------------------------------------------------------------------------- toy tasks
class ToyExplainer:
    """Deterministic in the task's generator (copied from test_launcher, fault modes dropped)."""

    def __init__(self, d):
        self.d = d

    def explain(self, x, target, k, rng):
        n = 1 + target % k
        cfs = x + rng.normal(size=(n, self.d))
        return Explanation(cfs, target, k, 0.01, None, rng.random(3), rng.random(3),
                           cfs[:1].repeat(3, 0), generations=3)


def toy_factory(problem, schema, class_bounds):
    return ToyExplainer(len(schema))


@pytest.fixture(scope="module")
def iris():
    return load_dataset(compose_config(FAST).dataset)


def toy_setup(iris, replications=3):
    comb = Combinations(tuple(iris.schema.names[:2]), ("none", "no_change"))
    queries = list(range(6))
    tasks = plan_tasks(queries, [[1, 2]] * len(queries), comb.chosen(3, seed=1), replications,
                       seed=5)
    ctx = WorkerContext(iris, toy_factory, None, comb, 3)
    return tasks, ctx


@pytest.fixture(scope="module")
def reference(iris):
    tasks, ctx = toy_setup(iris)
    return run_tasks(tasks, ctx, parallel=False, max_workers=None, progress=False)


def toy_journal(run_dir, iris, tasks, resume):
    return Journal.open(run_dir, {"toy": 1}, iris, tasks, resume)


RUN_FIELDS = ("pid", "peak_rss")  # which process ran a task, and its memory: not its result


def same(a: Any, b: Any) -> bool:
    """Equal field by field (but ``RUN_FIELDS``); arrays by value and dtype (whatever the
    result's shape)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name))
                                          for f in fields(a) if f.name not in RUN_FIELDS)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return bool(np.isnan(b))
    return type(a) is type(b) and a == b


def journal_with(tmp_path, iris, n=12):
    """A closed journal in ``tmp_path`` holding the first ``n`` toy tasks; (tasks, results)."""
    tasks, ctx = toy_setup(iris)
    with toy_journal(tmp_path, iris, tasks, resume=False) as journal:
        results = run_tasks(tasks[:n], ctx, parallel=False, max_workers=None, journal=journal,
                            progress=False)
    return tasks, results


def record_offsets(path: Path) -> list[int]:
    """Start offset of every record in a clean journal file (and its size at the end)."""
    blob, out, pos = path.read_bytes(), [], 0
    while pos < len(blob):
        out.append(pos)
        pos += records.FRAME.size + records.FRAME.unpack_from(blob, pos)[1]
    return [*out, len(blob)]


def flip(path: Path, offset: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x5A
    path.write_bytes(bytes(blob))


# ---------------------------------------------------------------- moved from test_launcher
def test_resume_after_interruption_gives_same_files(tmp_path):
    """Cut a finished run's journal to a torn half, rerun with resume=true: same files."""
    overrides = [*FAST, "experiment_params.num_samples=3"]
    ref = tmp_path / "ref"
    run(compose_config(overrides), ref)
    cut = tmp_path / "cut"
    result = run(compose_config(overrides), cut)
    path = cut / JOURNAL_DIR / RECORDS
    entries, end = read_records(path)
    assert len(entries) == len(result.tasks)
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])  # mid-record: the torn tail must be dropped
    for name in ("counterfactuals.csv", "metrics.csv", "summary.json"):
        (cut / name).unlink()
    again = run(compose_config([*overrides, "experiment_params.resume=true"]), cut)
    assert (cut / "counterfactuals.csv").read_bytes() == (ref / "counterfactuals.csv").read_bytes()
    assert len(read_records(path)[0]) == len(again.tasks)
    # a changed config refuses to reuse the journal, naming what changed
    with pytest.raises(ConfigError, match="experiment_params.num_counterfactuals"):
        run(compose_config([*overrides, "experiment_params.resume=true",
                            "experiment_params.num_counterfactuals=4"]), cut)


def test_journal_resume_from_sibling_run_dir_and_mismatch(iris, reference, tmp_path):
    tasks, ctx = toy_setup(iris)
    first = tmp_path / "outputs" / "2024-01-01" / "10-00-00_iris"
    with toy_journal(first, iris, tasks, resume=False) as journal:
        run_tasks(tasks[:10], ctx, parallel=False, max_workers=None, journal=journal,
                  progress=False)
    # the same command with resume=true gets a new Hydra run dir: the sibling is found
    second = tmp_path / "outputs" / "2024-01-02" / "09-00-00_iris"
    with toy_journal(second, iris, tasks, resume=True) as journal:
        assert sorted(journal.done) == list(range(10))
        assert journal.resumed_from == first
        results = run_tasks(tasks, ctx, parallel=False, max_workers=None, journal=journal,
                            progress=False)
    assert all(same(a, b) for a, b in zip(results, reference, strict=True))
    # another experiment's journal is not picked up, and in place it is refused
    with toy_journal(tmp_path / "outputs" / "x" / "y", iris, tasks[:5], resume=True) as j:
        assert not j.done
    with pytest.raises(ConfigError, match="toy"):
        Journal.open(first, {"toy": 2}, iris, tasks, resume=True)
    # resume=false starts afresh
    with toy_journal(first, iris, tasks, resume=False) as journal:
        assert not journal.done
    assert read_records(first / JOURNAL_DIR / RECORDS)[0] == []


# ---------------------------------------------------------------------------- the record codec
NewTaskResult = TaskResult  # the runner's TaskResult(index, explanation, error, peak_rss, pid)


def rich_explanation() -> Explanation:
    rng = np.random.default_rng(3)
    return Explanation(
        rng.normal(size=(2, 5)), target=2, k=3, seconds=0.25, reason="only 2 of 3 found",
        best_fitness=np.array([1.5, np.nan, np.inf]), mean_fitness=np.empty(0),
        best_per_generation=np.arange(12, dtype=">i4").reshape(3, 4),  # big-endian in
        generations=3, timed_out=True, roles=["closest", "sparsest"],
        extra={"mask": np.array([True, False]), "n": np.int64(7), "x": 0.1, "nested": {"a": [1, 2]},
               "none": None},
    )


def test_codec_round_trips_the_new_task_result_shape():
    exp = rich_explanation()
    result = NewTaskResult(4, exp, error=None, peak_rss=2**40, pid=123)
    task = (4, 1, 2, 0, 1, 2**62 + 5)
    payload = records.encode_payload(task, result)
    got_task, got = records.decode_payload(payload, NewTaskResult)
    assert got_task == task
    assert isinstance(got.explanation, Explanation)
    assert same(got.explanation.counterfactuals, exp.counterfactuals)
    assert got.explanation.best_per_generation.dtype == np.dtype("int32")  # native order out
    assert np.array_equal(got.explanation.best_per_generation, exp.best_per_generation)
    assert np.isnan(got.explanation.best_fitness[1]) and got.explanation.best_fitness[2] == np.inf
    assert got.explanation.roles == ["closest", "sparsest"] and got.explanation.timed_out is True
    assert got.explanation.reason == "only 2 of 3 found" and got.peak_rss == 2**40
    assert same(got.explanation.extra["mask"], exp.extra["mask"])
    assert got.explanation.extra["n"] == 7 and got.explanation.extra["nested"] == {"a": [1, 2]}
    # re-encoding the decoded result gives the same bytes
    assert records.encode_payload(got_task, got) == payload


def test_codec_keeps_working_when_fields_are_added_or_dropped():
    @dataclass
    class Older:
        index: int
        note: str = "x"

    @dataclass
    class Newer:
        index: int
        note: str = "x"
        added: list = field(default_factory=lambda: [1])

    task, got = records.decode_payload(records.encode_payload((1,), Older(1, "y")), Newer)
    assert got == Newer(1, "y", [1])  # missing field: its default
    task, got = records.decode_payload(records.encode_payload((1,), Newer(1, "z", [2])), Older)
    assert got == Older(1, "z")  # unknown field: dropped


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["arrays"].__setitem__(0, ["|O", [1]]), "bad array description"),
    (lambda d: d["arrays"].__setitem__(0, ["|V8", [1]]), "bad array description"),
    (lambda d: d["arrays"].__setitem__(0, ["<f8", [10**12]]), "past the record"),
    (lambda d: d["arrays"].__setitem__(0, ["<f8", [0]]), "no array describes"),
    (lambda d: d["result"]["explanation"].__setitem__("counterfactuals", {"__ndarray__": 99}),
     "out of range"),
    (lambda d: d.__setitem__("task", "x"), "no task tuple"),
    (lambda d: d["result"].pop("index"), "cannot build"),
])
def test_codec_refuses_crafted_content(mutate, message):
    result = TaskResult(0, Explanation(np.zeros((1, 2)), 1, 1, 0.0, best_fitness=np.zeros(1),
                                       mean_fitness=np.zeros(1),
                                       best_per_generation=np.zeros((1, 2))))
    payload = records.encode_payload((0, 0, 1, 0, 0, 1), result)
    (n,) = struct.unpack_from("<I", payload)
    doc = json.loads(payload[4:4 + n])
    mutate(doc)
    text = json.dumps(doc).encode()
    with pytest.raises(RecordError, match=message):
        records.decode_record(struct.pack("<I", len(text)) + text + payload[4 + n:])


def test_codec_refuses_values_that_are_not_json():
    result = NewTaskResult(0, Explanation(np.zeros((0, 2)), 1, 1, 0.0, extra={"f": object()}))
    with pytest.raises(TypeError, match=r"result.explanation.extra\['f'\]"):
        records.encode_payload((0,), result)


# ---------------------------------------------------------------------------- defect 1: pickle
class CreatesFile:
    """Unpickling this calls ``open(path, "w")``: proof that a pickle payload ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def legacy_record(obj: Any) -> bytes:
    """A record as cfgen wrote them before format 2: CFJ1 | crc32 | length | pickle."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("<4sIQ", b"CFJ1", zlib.crc32(payload), len(payload)) + payload


def flat_fields(obj: Any) -> dict[str, Any]:
    """A result's fields with nested dataclasses flattened in (the format-1 record shape)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out.update(flat_fields(v) if is_dataclass(v) else {f.name: v})
    return out


def legacy_manifest(directory: Path) -> None:
    """Turn a journal's manifest into the format-1 manifest of the same experiment."""
    m = json.loads((directory / MANIFEST).read_text())
    m["format"], m["fingerprint"] = 1, m.pop("legacy_fingerprint")
    (directory / MANIFEST).write_text(json.dumps(m))


@pytest.mark.parametrize("old_manifest", [False, True], ids=["format-2 manifest", "format-1"])
def test_crafted_pickle_journal_is_refused_and_never_runs(iris, tmp_path, monkeypatch,
                                                          old_manifest):
    monkeypatch.delenv(records.TRUST_ENV, raising=False)
    tasks, _ = journal_with(tmp_path, iris, n=2)
    marker = tmp_path / "payload_ran"
    (tmp_path / JOURNAL_DIR / RECORDS).write_bytes(
        legacy_record((tuple(tasks[0]), CreatesFile(marker))))
    if old_manifest:
        legacy_manifest(tmp_path / JOURNAL_DIR)
    with pytest.raises(ConfigError) as err:
        toy_journal(tmp_path, iris, tasks, resume=True)
    assert not marker.exists(), "the pickle payload was executed"
    assert "\n" not in str(err.value) and records.TRUST_ENV in str(err.value)
    assert "pickled" in str(err.value)


def test_crafted_pickle_in_a_sibling_run_is_refused(iris, tmp_path, monkeypatch):
    monkeypatch.delenv(records.TRUST_ENV, raising=False)
    first = tmp_path / "outputs" / "d1" / "t1"
    tasks, _ = journal_with(first, iris, n=2)
    marker = tmp_path / "payload_ran"
    (first / JOURNAL_DIR / RECORDS).write_bytes(legacy_record((tuple(tasks[0]),
                                                               CreatesFile(marker))))
    with pytest.raises(UntrustedJournal):
        toy_journal(tmp_path / "outputs" / "d2" / "t2", iris, tasks, resume=True)
    assert not marker.exists(), "the pickle payload was executed"


def test_own_pickled_journal_is_read_with_the_opt_in_and_converted(iris, tmp_path,
                                                                   monkeypatch, reference):
    tasks, _ = journal_with(tmp_path, iris, n=1)
    old_fields = ("index", "counterfactuals", "seconds", "reason", "generations",
                  "best_fitness", "mean_fitness", "best_per_generation", "error", "peak_rss",
                  "pid", "timed_out")
    blob = b"".join(legacy_record((tuple(tasks[i]), {f: flat_fields(reference[i]).get(f, False)
                                                      for f in old_fields})) for i in range(5))
    (tmp_path / JOURNAL_DIR / RECORDS).write_bytes(blob)
    legacy_manifest(tmp_path / JOURNAL_DIR)
    monkeypatch.delenv(records.TRUST_ENV, raising=False)
    with pytest.raises(UntrustedJournal):
        toy_journal(tmp_path, iris, tasks, resume=True)
    monkeypatch.setenv(records.TRUST_ENV, "1")
    with toy_journal(tmp_path, iris, tasks, resume=True) as journal:
        assert sorted(journal.done) == list(range(5))
    assert (tmp_path / JOURNAL_DIR / RECORDS).read_bytes()[:4] == records.MAGIC  # converted
    monkeypatch.delenv(records.TRUST_ENV)
    with toy_journal(tmp_path, iris, tasks, resume=True) as journal:  # no opt-in needed now
        for i in range(5):
            a, b = journal.done[i].explanation, reference[i].explanation
            diff = [f.name for f in fields(a) if f.name != "k"
                    and not same(getattr(a, f.name), getattr(b, f.name))]
            assert not diff, (diff, [getattr(a, n) for n in diff], [getattr(b, n) for n in diff])
            # format-1 records had no k: the journal's config gives it (here: none, so the
            # number of counterfactuals the record holds)
            assert a.k == len(a.counterfactuals)


# ---------------------------------------------------------------------------- defect 2: damage
def test_flipped_length_byte_costs_one_record(iris, tmp_path, caplog):
    """One byte of record 3's length field flipped: was a MemoryError on every resume."""
    tasks, results = journal_with(tmp_path, iris, n=12)
    path = tmp_path / JOURNAL_DIR / RECORDS
    offsets = record_offsets(path)
    flip(path, offsets[3] + 4 + 6)  # a high byte of the u64 length
    with caplog.at_level(logging.WARNING, logger="cfgen.journal"):
        with toy_journal(tmp_path, iris, tasks, resume=True) as journal:
            assert sorted(journal.done) == [i for i in range(12) if i != 3]
            assert all(same(journal.done[i], results[i]) for i in journal.done)
    text = caplog.text
    assert "1 corrupt record " in text and "partly written" not in text
    assert (tmp_path / JOURNAL_DIR / DAMAGED).exists()
    assert scan_records(path).damaged is False  # rewritten with its intact records


def test_flipped_payload_byte_in_the_middle_keeps_every_later_record(iris, tmp_path, caplog):
    """One byte in record 3's payload flipped: was every record after it dropped."""
    tasks, results = journal_with(tmp_path, iris, n=12)
    path = tmp_path / JOURNAL_DIR / RECORDS
    offsets = record_offsets(path)
    flip(path, (offsets[3] + offsets[4]) // 2)
    scan = scan_records(path)
    assert (scan.corrupt, scan.torn) == (1, 0)
    assert [r.index for _, r in scan.entries] == [i for i in range(12) if i != 3]
    with caplog.at_level(logging.WARNING, logger="cfgen.journal"):
        with toy_journal(tmp_path, iris, tasks, resume=True) as journal:
            assert len(journal.done) == 11
    assert "1 corrupt record " in caplog.text and "partly written" not in caplog.text


def test_torn_last_record_is_partly_written(iris, tmp_path, caplog):
    tasks, results = journal_with(tmp_path, iris, n=6)
    path = tmp_path / JOURNAL_DIR / RECORDS
    offsets = record_offsets(path)
    for cut in (offsets[5] + 7, offsets[5] + records.FRAME.size + 3, offsets[6] - 1):
        blob = path.read_bytes()
        path.write_bytes(blob[:cut])
        scan = scan_records(path)
        assert (len(scan.entries), scan.corrupt, scan.torn) == (5, 0, cut - offsets[5])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgen.journal"):
            with toy_journal(tmp_path, iris, tasks, resume=True) as journal:
                assert sorted(journal.done) == list(range(5))
                journal.append(tasks[5], results[5])  # back to 6 whole records
        assert "partly written" in caplog.text and "corrupt" not in caplog.text
        assert not scan_records(path).damaged


def test_random_damage_never_crashes_and_never_forges(iris, tmp_path):
    """Seeded random byte flips: no exception, every record returned is an original one, and
    at most one record is lost per damaged record."""
    tasks, results = journal_with(tmp_path, iris, n=20)
    path = tmp_path / JOURNAL_DIR / RECORDS
    clean = path.read_bytes()
    offsets = record_offsets(path)
    rng = np.random.default_rng(11)
    for _ in range(60):
        blob = bytearray(clean)
        hits = rng.integers(0, len(blob), size=int(rng.integers(1, 4)))
        for h in hits:
            blob[h] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(blob))
        scan = scan_records(path)
        damaged = {int(np.searchsorted(offsets, h, side="right")) - 1 for h in hits}
        assert all(same(r, results[r.index]) and t == tuple(tasks[r.index])
                   for t, r in scan.entries)
        assert {r.index for _, r in scan.entries} >= set(range(20)) - damaged


# ---------------------------------------------------------------------------- defect 3: lock
HOLD = ("import sys, time; from cfgen.rundir import prepare; prepare(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(120)")


@contextlib.contextmanager
def lock_holder(path: Path):
    """Another live process holding ``path``'s run-directory lock (SIGKILLed at the end)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], env=ENV,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_run_dir_lock_names_the_holder_and_frees_when_it_dies(tmp_path):
    d = tmp_path / "run"
    with lock_holder(d) as holder:
        with pytest.raises(RunDirBusy) as err:
            rundir.prepare(d)
        assert f"pid {holder.pid}" in str(err.value) and "\n" not in str(err.value)
        assert isinstance(err.value, ConfigError)
        holder.send_signal(signal.SIGKILL)  # kill -9: the kernel frees the lock
        holder.wait()
        with rundir.prepare(d) as lock:
            assert lock.held
            assert (d / rundir.LOCK).read_text().split()[0] == str(os.getpid())
            with rundir.prepare(d) as again:  # re-entrant in one process
                assert again is lock
            assert lock.held
        assert not lock.held


def test_lock_is_exclusive_across_processes_after_release(tmp_path):
    d = tmp_path / "run"
    with rundir.prepare(d):
        code = ("import sys; from cfgen.rundir import prepare, RunDirBusy\n"
                "try:\n    prepare(sys.argv[1])\nexcept RunDirBusy as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code, str(d)], env=ENV, text=True,
                             capture_output=True, check=True).stdout
        assert f"pid {os.getpid()}" in out
    out = subprocess.run([sys.executable, "-c", code, str(d)], env=ENV, text=True,
                         capture_output=True, check=True).stdout
    assert out == ""


# ---------------------------------------------------------------------------- defect 4: writes
@contextlib.contextmanager
def unwritable(directory: Path):
    """``directory`` made unwritable even for root (chattr +i), else by its mode."""
    directory.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode:
            pytest.skip("running as root and chattr +i is not available here: cannot make a "
                        "directory unwritable")
    else:
        directory.chmod(0o555)
    try:
        yield directory
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        else:
            directory.chmod(0o755)


def test_prepare_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    for target in (tmp_path / "afile" / "run", tmp_path / "afile"):
        with pytest.raises(RunDirError) as err:
            rundir.prepare(target)
        msg = str(err.value)
        assert "\n" not in msg and str(target) in msg and "not a directory" in msg


def test_prepare_in_an_unwritable_parent_is_one_line_and_creates_nothing(tmp_path):
    with unwritable(tmp_path / "ro") as parent:
        for check in (rundir.prepare, rundir.check_creatable):
            with pytest.raises(RunDirError) as err:
                check(parent / "a" / "run")
            msg = str(err.value)
            assert "\n" not in msg and str(parent / "a" / "run") in msg and "errno" in msg
        assert list(parent.iterdir()) == []


def test_prepare_in_an_unwritable_run_dir_is_one_line(tmp_path):
    with unwritable(tmp_path / "run") as d:
        with pytest.raises(RunDirError, match="is not writable"):
            rundir.prepare(d)


def test_journal_write_on_a_full_disk_is_one_error_and_the_journal_stays(iris, tmp_path):
    tasks, results = journal_with(tmp_path, iris, n=4)
    before = (tmp_path / JOURNAL_DIR / RECORDS).read_bytes()
    journal = toy_journal(tmp_path, iris, tasks, resume=True)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, journal._fd)  # this journal's descriptor now writes to a full disk
    os.close(full)
    with pytest.raises(OutputError) as err:
        with journal:
            journal.append(tasks[4], results[0])
    msg = str(err.value)
    assert "\n" not in msg and str(journal.path) in msg and "No space left" in msg
    assert isinstance(err.value.__cause__, OSError)  # the append's error, not one from close
    assert not isinstance(err.value.__context__, OutputError)
    assert (tmp_path / JOURNAL_DIR / RECORDS).read_bytes() == before
    with toy_journal(tmp_path, iris, tasks, resume=True) as again:
        assert sorted(again.done) == [0, 1, 2, 3]


EFBIG_JOURNAL = """
import resource, sys
from conftest import FAST, compose_config
from cfgen.data import load_dataset
from cfgen.journal import Journal
from cfgen.rundir import OutputError, ignore_sigxfsz
import test_journal as tj
iris = load_dataset(compose_config(FAST).dataset)
tasks, ctx = tj.toy_setup(iris)
results = tj.run_tasks(tasks, ctx, parallel=False, max_workers=None, progress=False)
ignore_sigxfsz()
journal = Journal.open(sys.argv[1], {"toy": 1}, iris, tasks, False)
size = journal.path.stat().st_size
limit = 2500
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
n = 0
try:
    with journal:
        for t, r in zip(tasks, results):
            journal.append(t, r)
            n += 1
except OutputError as e:
    print(n, e)
"""


@pytest.mark.fault
def test_journal_write_over_the_file_size_limit_keeps_whole_records(tmp_path):
    """ulimit -f: SIGXFSZ ignored, the write fails with EFBIG, the part written is cut off."""
    out = subprocess.run([sys.executable, "-c", EFBIG_JOURNAL, str(tmp_path)], text=True,
                         capture_output=True, env={**ENV, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
                         cwd=ROOT / "tests", timeout=300)
    assert out.returncode == 0, out.stderr
    n, msg = out.stdout.strip().split(" ", 1)
    assert int(n) > 0 and "File too large" in msg and str(tmp_path / JOURNAL_DIR / RECORDS) in msg
    scan = scan_records(tmp_path / JOURNAL_DIR / RECORDS)
    assert len(scan.entries) == int(n) and not scan.damaged


def test_output_errors_names_files_of_the_run_and_passes_others(tmp_path):
    with pytest.raises(OutputError) as err, rundir.output_errors(tmp_path):
        open(tmp_path / "no" / "such" / "dir.csv", "w")
    assert str(tmp_path / "no" / "such" / "dir.csv") in str(err.value)
    with pytest.raises(OutputError, match="No space left"), rundir.output_errors(tmp_path):
        with open("/dev/full", "w") as fh:
            fh.write("x")
            fh.flush()
    with pytest.raises(FileNotFoundError), rundir.output_errors(tmp_path):  # not an output
        open(tmp_path.parent / "missing-dataset.csv")


# ---------------------------------------------------------------------------- 5: atomic files
def test_atomic_write_fails_whole_and_leaves_the_old_file(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "summary.json").write_text("old")
    with unwritable(d):
        with pytest.raises(OutputError) as err:
            rundir.atomic_write(d / "summary.json", "new")
        assert str(d / "summary.json") in str(err.value)
    assert (d / "summary.json").read_text() == "old" and os.listdir(d) == ["summary.json"]
    rundir.atomic_write(d / "summary.json", "new")
    assert (d / "summary.json").read_text() == "new" and os.listdir(d) == ["summary.json"]


ATOMIC_EFBIG = """
import resource, sys
from cfgen.rundir import OutputError, atomic_write, ignore_sigxfsz
ignore_sigxfsz()
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    atomic_write(sys.argv[1], "x" * 10000)
except OutputError as e:
    print(e)
"""


def test_atomic_write_over_the_file_size_limit_leaves_no_part(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")
    out = subprocess.run([sys.executable, "-c", ATOMIC_EFBIG, str(target)], env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # not killed by SIGXFSZ
    assert "File too large" in out.stdout and str(target) in out.stdout
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_atomic_write_syncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    rundir.atomic_write(tmp_path / "metrics.csv", "a,b\n")
    assert len(synced) == 2 and synced[1] == str(tmp_path)
    assert synced[0].startswith(str(tmp_path / ".metrics.csv."))  # the tmp file, before rename


def test_mark_unfinished_removes_the_finished_marker(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    rundir.mark_unfinished(tmp_path)
    assert not (tmp_path / "summary.json").exists()
    rundir.mark_unfinished(tmp_path)  # nothing to remove: fine


# ---------------------------------------------------------------------------- the CLI
TINY = ["experiment_params.num_samples=1", "experiment_params.num_replications=1",
        "experiment_params.parallel_replications=false", "output.table=false"]


def cli(run_dir: Path, *extra: str, fsize: int | None = None, wait: bool = True):
    args = [sys.executable, "-m", "cfgen", *TINY, f"hydra.run.dir={run_dir}", *extra]
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))) if fsize else None
    if not wait:
        return subprocess.Popen(args, env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, env=ENV, cwd=ROOT, capture_output=True, text=True,
                          preexec_fn=limit, timeout=600)


def one_error_line(proc) -> str:
    """The CLI's error: exactly one line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith("cfgen: error: "), err
    return err


@pytest.mark.fault
def test_cli_second_run_on_a_busy_run_dir_is_refused(tmp_path):
    """Two runs a second apart on one hydra.run.dir with different seeds: the second exits 2
    naming the first's pid, before touching the directory; the first finishes intact."""
    d = tmp_path / "run"
    first = cli(d, "experiment_params.seed=1", wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not (d / rundir.LOCK).exists():
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # hold the first run mid-way, lock taken
    try:
        second = cli(d, "experiment_params.seed=2")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2
    assert f"pid {first.pid}" in one_error_line(second)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert "seed: 1" in (d / ".hydra" / "config.yaml").read_text()
    assert json.loads((d / "summary.json").read_text())["n_tasks"] > 0
    assert "seed: 1" in (d / "config.yaml").read_text()


@pytest.mark.fault
def test_cli_resume_after_the_holder_was_killed(tmp_path):
    d = tmp_path / "run"
    with lock_holder(d) as holder:
        busy = cli(d)
        assert busy.returncode == 2 and f"pid {holder.pid}" in one_error_line(busy)
        assert os.listdir(d) == [rundir.LOCK]  # refused before Hydra wrote anything
    done = cli(d, "experiment_params.resume=true")
    assert done.returncode == 0, done.stderr
    assert (d / "summary.json").exists()


@pytest.mark.fault
def test_cli_run_dir_under_a_regular_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = cli(tmp_path / "afile" / "run")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert str(tmp_path / "afile" / "run") in line and "not a directory" in line


@pytest.mark.fault
def test_cli_run_dir_in_an_unwritable_directory(tmp_path):
    with unwritable(tmp_path / "ro") as parent:
        proc = cli(parent / "run")
    assert proc.returncode == 2
    assert str(parent / "run") in one_error_line(proc)


@pytest.mark.fault
def test_cli_file_size_limit_is_one_line_and_resumable(tmp_path):
    """ulimit -f 10 (10 KiB) over a finished run's directory: exit 1 with one line; the old
    summary.json is gone (no "finished" marker over new, partial files); resume finishes."""
    d = tmp_path / "run"
    assert cli(d).returncode == 0 and (d / "summary.json").exists()
    cut = cli(d, "experiment_params.seed=3", fsize=10 * 1024)
    assert cut.returncode == 1, cut.stderr
    line = one_error_line(cut)
    assert f"cannot write {d}/" in line and "File too large" in line and "resume=true" in line
    assert not (d / "summary.json").exists()
    assert not [p for p in os.listdir(d) if p.endswith(".tmp")]
    written = (d / "counterfactuals.csv").read_bytes()
    again = cli(d, "experiment_params.seed=3", "experiment_params.resume=true")
    assert again.returncode == 0, again.stderr
    assert "2 of 2 tasks already finished" in again.stdout
    assert (d / "counterfactuals.csv").read_bytes() == written
    assert json.loads((d / "summary.json").read_text())["n_tasks"] == 2


def test_precheck_output_locks_a_fixed_dir_and_only_checks_a_dated_one(tmp_path):
    fixed = tmp_path / "fixed"
    lock = rundir.precheck_output([f"hydra.run.dir={fixed}"])
    try:
        assert lock is not None and lock.held and (fixed / rundir.LOCK).exists()
        assert rundir.prepare(fixed) is lock  # the run re-enters the lock main() took
        lock.release()
        assert lock.held
    finally:
        lock.release()
    assert not lock.held
    dated = tmp_path / "outputs" / "${now:%Y-%m-%d}"
    assert rundir.precheck_output([f"hydra.run.dir={dated}"]) is None
    assert not (tmp_path / "outputs").exists()  # checked, not created
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunDirError, match="hydra.sweep.dir=.*is not a directory"):
        rundir.precheck_output(["-m", f"hydra.sweep.dir={tmp_path / 'afile' / 'sweep'}"])


@pytest.mark.fault
def test_cli_kill_9_of_the_parent_then_resume_loses_nothing(tmp_path):
    """SIGKILL of `python -m cfgen` mid-run: every record written is kept (a torn last one is
    dropped), the lock is free at once, and resume gives the uninterrupted run's files."""
    more = ["experiment_params.num_samples=20", "experiment_params.num_replications=2"]
    ref = cli(tmp_path / "ref", *more)
    assert ref.returncode == 0, ref.stderr
    d = tmp_path / "cut"
    proc = cli(d, *more, wait=False)
    path = d / JOURNAL_DIR / RECORDS
    deadline = time.time() + 300
    while time.time() < deadline and (not path.exists() or path.stat().st_size < 3000):
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert not (d / "summary.json").exists(), "the run finished before it was killed"
    saved = len(read_records(path)[0])
    assert saved > 0
    again = cli(d, *more, "experiment_params.resume=true")
    assert again.returncode == 0, again.stderr
    assert f"resuming: {saved} of 80 tasks already finished" in again.stdout
    assert (d / "counterfactuals.csv").read_bytes() == \
        (tmp_path / "ref" / "counterfactuals.csv").read_bytes()


def test_one_list_of_launch_only_keys():
    """The journal's fingerprint and Hydra's job directory names ignore the same keys."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from cfgen.cli import CONF_DIR
    from cfgen.config import register
    from cfgen.journal import launch_only_keys

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        full = compose("config", return_hydra_config=True)
    assert list(full.hydra.job.config.override_dirname.exclude_keys) == launch_only_keys()
    assert "experiment_params.parallel_replications" in launch_only_keys()
