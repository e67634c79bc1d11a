"""Comparing two finished run folders, and finding torn checkpoints (the fault-injection checks)."""

from __future__ import annotations

import json
from pathlib import Path

from eggroll_snn.run_folder import LOCK_FILE

#: Fields excluded from the comparison, per file: each measures elapsed time.
EXCLUDED_FIELDS = {
    "metrics.jsonl": ("seconds_per_generation", "wall_time_s"),
    "checkpoints/*.json": ("wall_time_s",),
    "summary.json": ("wall_time_s", "seconds_per_generation"),
}


def torn_checkpoints(run_dir: Path) -> list[str]:
    """Checkpoint descriptions on disk whose array file is missing or fails its checksum."""
    from eggroll_snn.checkpoint import CHECKPOINT_PATTERN, verify
    from eggroll_snn.errors import CheckpointError

    torn = []
    folder = run_dir / "checkpoints"
    for path in sorted(folder.glob("gen-*.json")) if folder.is_dir() else []:
        if not CHECKPOINT_PATTERN.match(path.name):
            continue
        try:
            verify(path)
        except CheckpointError as error:
            torn.append(str(error))
    return torn


def _metrics_problems(lines: list[str], name: str) -> tuple[list[dict], list[str]]:
    records, problems = [], []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            problems.append(f"{name}: line {number} is not valid JSON (a torn write)")
    generations = [record.get("generation") for record in records]
    duplicates = sorted({g for g in generations if generations.count(g) > 1})
    if duplicates:
        problems.append(f"{name}: duplicated generations {duplicates[:10]}")
    if generations != list(range(1, len(generations) + 1)):
        missing = sorted(set(range(1, max(generations, default=0) + 1)) - set(generations))
        problems.append(f"{name}: generations are not 1..{len(generations)} in order (missing {missing[:10]})")
    return records, problems


def _without(record: dict, fields) -> dict:
    return {key: value for key, value in record.items() if key not in fields}


def _file_list(run_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if path.is_file())


def compare_runs(reference: Path, candidate: Path) -> list[str]:
    """Every difference between two finished run folders (empty when they are identical).

    See the module docstring for what is compared and which timing fields are excluded.
    """
    differences = []
    listed = _file_list(reference), _file_list(candidate)
    if listed[0] != listed[1]:
        extra = sorted(set(listed[1]) - set(listed[0]))
        missing = sorted(set(listed[0]) - set(listed[1]))
        differences.append(f"file list differs: extra {extra}, missing {missing}")
    for name in listed[0]:
        if name not in listed[1]:
            continue
        a, b = (reference / name).read_bytes(), (candidate / name).read_bytes()
        if name == "metrics.jsonl":
            fields = EXCLUDED_FIELDS["metrics.jsonl"]
            ref_records, _ = _metrics_problems(a.decode().splitlines(), name)
            records, problems = _metrics_problems(b.decode().splitlines(), name)
            differences += problems
            if len(records) != len(ref_records):
                differences.append(f"{name}: {len(records)} lines, the reference has {len(ref_records)}")
            for want, have in zip(ref_records, records):
                if _without(want, fields) != _without(have, fields):
                    differences.append(f"{name}: generation {want.get('generation')} differs: {have} vs {want}")
                    break
        elif name.endswith(".json") and (name.startswith("checkpoints/") or name == "summary.json"):
            fields = EXCLUDED_FIELDS["summary.json" if name == "summary.json" else "checkpoints/*.json"]
            try:
                equal = _without(json.loads(a), fields) == _without(json.loads(b), fields)
            except json.JSONDecodeError:
                equal = False
            if not equal:
                differences.append(f"{name}: differs beyond the timing fields {fields}")
        elif name == LOCK_FILE:
            continue  # it names the process that held the folder
        elif a != b:
            differences.append(f"{name}: bytes differ")
    return differences
