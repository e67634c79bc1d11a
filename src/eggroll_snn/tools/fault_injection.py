"""Fault injection for crash-safe training: kill ``eggroll-snn train`` at random moments, resume it,
and check that the finished run equals an uninterrupted one with the same seed.

Usage (with the package installed; ``python scripts/fault_injection.py`` does the same)::

    python -m eggroll_snn.tools.fault_injection --trials 20 --data /work/shared/data/nmnist-small

What it does:

1. Writes a tiny training config (17 x 17 frames, 4 time bins, 16 hidden neurons, 16 members,
   240 generations; metrics every 2 generations, validation every 6, a checkpoint every 4) and
   trains it once without interruption: the *reference* run. A second uninterrupted run, the
   *control*, must equal it (it also times a session for the ``time`` trigger below).
2. Runs ``--trials`` trials. Each trial trains the same config into a new folder as a subprocess
   (``python -m eggroll_snn.cli train``) and sends it ``SIGKILL`` at a seeded random moment, chosen
   by one of three triggers:

   * ``time``: a delay drawn uniformly from ``[0, reference duration]`` (start-up, compilation,
     data loading and training alike);
   * ``progress``: as soon as ``metrics.jsonl`` has grown to a random fraction of its final size
     (right after a metrics write, often before the matching checkpoint);
   * ``write``: as soon as a temporary file of an atomic write (``.<name>.tmp-<pid>``) is seen,
     i.e. in the middle of writing a checkpoint, ``config.toml`` or ``summary.json``.

   It then restarts with ``--resume`` (or afresh when the kill came before ``config.toml``
   existed) and repeats, up to ``--max-kills`` kills, until a session exits with status 0.
   A trial whose run finished before its kill moment is not counted; another one replaces it.
3. After each kill it checks that every checkpoint on disk is either complete (checksum matches)
   or absent: a torn checkpoint is a failure.
4. Runs ``--sigint-trials`` trials that send ``SIGINT`` (Ctrl-C) instead: the process must exit
   with status 130 after writing a checkpoint at the last generation in ``metrics.jsonl``
   (no gap, no duplicate); resuming must then give the same result as the reference.
5. Compares every finished run with the reference (:func:`compare_runs`):

   * ``model.npz`` and every ``checkpoints/*.npz``: byte for byte (numpy writes fixed zip
     timestamps, so equal arrays give equal bytes);
   * ``config.toml``, ``model.json``: byte for byte;
   * ``metrics.jsonl``: line by line, value by value, after dropping ``seconds_per_generation``
     and ``wall_time_s`` (``eggroll_snn.run_folder.TIMING_FIELDS``: they measure elapsed time, which
     differs between any two runs); every line must parse and generations must run 1, 2, ... N
     with no duplicate and no gap;
   * ``checkpoints/*.json``: value by value except ``wall_time_s`` (the training time so far,
     stored so a resumed run continues the clock);
   * ``summary.json``: value by value except ``wall_time_s`` and ``seconds_per_generation``;
   * the list of files in the run folder: no leftover temporary files or orphan ``.npz`` files.

It prints a summary (trials, survived, identical) and exits with status 0 only when every trial
survived and was identical. The total time is bounded by ``--time-limit``: no new trial starts
after it (the summary then says how many ran).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from eggroll_snn.tools.fault_sessions import Campaign, Session, metrics_size, run_session
from eggroll_snn.tools.run_compare import EXCLUDED_FIELDS, compare_runs, torn_checkpoints

DEFAULT_DATA = Path("/work/shared/data/nmnist-small")

#: The run's options (TOML); ``{seed}``, ``{generations}`` and ``{cache_dir}`` are filled in.
CONFIG_TEMPLATE = """\
# fault injection: a tiny run, a few seconds per session
[data]
num_time_bins = 4
pool = 2
cache_dir = {cache_dir}

[network]
hidden_sizes = [16]

[strategy]
population_size = 16
rank = 2

[train]
generations = {generations}
batch_size = 32
generations_per_call = 2
eval_every = 6
checkpoint_every = 4
keep_checkpoints = 2
eval_batch_size = 128
seed = {seed}
"""

TRIGGERS = ("time", "progress", "write")


# --------------------------------------------------------------------------------------------
# Trials


@dataclasses.dataclass
class Trial:
    name: str
    sessions: list[Session]
    survived: bool
    differences: list[str]
    torn: list[str]
    note: str = ""

    @property
    def identical(self) -> bool:
        return self.survived and not self.differences and not self.torn

    @property
    def kills(self) -> int:
        return sum(session.signalled for session in self.sessions)


def _plan_trigger(rng: random.Random, campaign: Campaign) -> tuple:
    kind = rng.choice(TRIGGERS)
    if kind == "time":
        return kind, rng.uniform(0.0, campaign.reference_seconds)
    if kind == "progress":
        return kind, max(1, int(rng.uniform(0.0, 1.0) * campaign.reference_metrics_bytes))
    return kind, rng.randint(1, 10)


def kill_trial(campaign: Campaign, name: str, rng: random.Random, max_kills: int) -> Trial:
    """Train into a new folder, SIGKILL it up to ``max_kills`` times, resume until it finishes."""
    run_dir = campaign.work_dir / name
    sessions, torn = [], []
    kills_wanted = rng.randint(1, max_kills)
    while True:
        trigger = _plan_trigger(rng, campaign) if sum(s.signalled for s in sessions) < kills_wanted else None
        session = run_session(campaign, run_dir, trigger)
        sessions.append(session)
        if session.signalled:
            torn += torn_checkpoints(run_dir)
            continue
        break
    survived = sessions[-1].returncode == 0
    note = "" if survived else sessions[-1].output[-2000:]
    differences = compare_runs(campaign.reference_dir, run_dir) if survived else []
    return Trial(name, sessions, survived, differences, torn, note)


def sigint_trial(campaign: Campaign, name: str, rng: random.Random) -> Trial:
    """Ctrl-C while training: exit 130 with a checkpoint at the last logged generation; resume."""
    from eggroll_snn.checkpoint import latest_valid_checkpoint
    from eggroll_snn.run_folder import read_metrics

    run_dir = campaign.work_dir / name
    target = max(1, int(rng.uniform(0.1, 0.6) * campaign.reference_metrics_bytes))
    first = run_session(campaign, run_dir, ("progress", target), sig=signal.SIGINT)
    sessions, problems = [first], []
    if first.returncode == 0:
        return Trial(name, sessions, True, [], [], note="finished before the SIGINT arrived (not counted)")
    if first.returncode != 130 or "interrupted" not in first.output:
        problems.append(f"SIGINT: exit status {first.returncode} (expected 130); output: {first.output[-800:]!r}")
    else:
        found = latest_valid_checkpoint(run_dir / "checkpoints")
        records = read_metrics(run_dir)
        last = records[-1]["generation"] if records else 0
        if found is None or found.generation != last:
            problems.append(
                f"SIGINT: newest checkpoint is generation {found.generation if found else None}, "
                f"metrics.jsonl ends at {last}"
            )
    final = run_session(campaign, run_dir)
    sessions.append(final)
    survived = final.returncode == 0 and not problems
    differences = compare_runs(campaign.reference_dir, run_dir) if final.returncode == 0 else []
    return Trial(name, sessions, survived, problems + differences, torn_checkpoints(run_dir), final.output[-2000:] if final.returncode else "")


def reference_run(campaign: Campaign) -> Trial:
    """The uninterrupted reference run, then a second uninterrupted one (the control) compared with it.

    The control shows that two clean runs agree (also when the second one uses cached compiled
    code) and times a session as the kills will see it (the reference also compiles).
    """
    run_dir = campaign.work_dir / "reference"
    session = run_session(campaign, run_dir)
    if session.returncode != 0:
        raise RuntimeError(f"the uninterrupted reference run failed:\n{session.output[-3000:]}")
    campaign.reference_dir = run_dir
    campaign.reference_metrics_bytes = metrics_size(run_dir)
    control_dir = campaign.work_dir / "control"
    control = run_session(campaign, control_dir)
    campaign.reference_seconds = control.seconds
    differences = compare_runs(run_dir, control_dir) if control.returncode == 0 else []
    return Trial("control", [control], control.returncode == 0, differences, [], control.output[-2000:] if control.returncode else "")


def make_campaign(work_dir: Path, data_root: Path, seed: int, generations: int, jax_cache: bool, session_timeout_s: float) -> Campaign:
    """Write the config and the environment the sessions share (own frame cache, JAX compile cache)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "config.toml"
    cache_dir = work_dir / "frame-cache"
    config_path.write_text(CONFIG_TEMPLATE.format(seed=seed, generations=generations, cache_dir=json.dumps(str(cache_dir))))
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    if jax_cache:
        # Recompiling in every resumed session dominates its time; cached executables are the same
        # XLA programs, so results must not change (and the comparison checks that they do not).
        env["JAX_COMPILATION_CACHE_DIR"] = str(work_dir / "jax-cache")
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return Campaign(work_dir, config_path, data_root, env, session_timeout_s)


@dataclasses.dataclass
class Summary:
    trials: list[Trial]
    sigint_trials: list[Trial]
    requested: int
    seconds: float
    control: Trial
    unkilled: int = 0

    def figures(self) -> dict:
        sessions = [s for t in self.trials for s in t.sessions if s.signalled]
        counted_sigint = [t for t in self.sigint_trials if not t.note.startswith("finished before")]
        return {
            "trials": len(self.trials),
            "requested": self.requested,
            "survived": sum(t.survived for t in self.trials),
            "identical": sum(t.identical for t in self.trials),
            "sigkills": len(sessions),
            "kills_by_trigger": {k: sum(s.trigger == k for s in sessions) for k in TRIGGERS},
            "kills_in_start_up": sum(not s.wrote_metrics_before_signal for s in sessions),
            "kills_leaving_a_temporary_file": sum(s.temporary_at_signal for s in sessions),
            "resumed_sessions": sum(s.command == "resume" for t in self.trials for s in t.sessions),
            "torn_checkpoints": sum(len(t.torn) for t in self.trials + self.sigint_trials),
            "sigint_trials": len(counted_sigint),
            "sigint_graceful_and_identical": sum(t.identical for t in counted_sigint),
            "control_identical": self.control.identical,
            "trials_finished_before_any_kill": self.unkilled,
            "seconds": round(self.seconds, 1),
        }

    @property
    def ok(self) -> bool:
        figures = self.figures()
        return (
            figures["control_identical"]
            and figures["trials"] == figures["requested"] == figures["identical"]
            and figures["sigint_graceful_and_identical"] == figures["sigint_trials"]
            and figures["torn_checkpoints"] == 0
        )


def run_campaign(
    work_dir: Path,
    data_root: Path = DEFAULT_DATA,
    trials: int = 20,
    sigint_trials: int = 2,
    seed: int = 0,
    generations: int = 240,
    max_kills: int = 3,
    time_limit_s: float = 900.0,
    jax_cache: bool = True,
    session_timeout_s: float = 300.0,
    log=print,
) -> Summary:
    """The reference run, then ``trials`` SIGKILL trials and ``sigint_trials`` SIGINT trials."""
    start = time.monotonic()
    campaign = make_campaign(work_dir, data_root, seed, generations, jax_cache, session_timeout_s)
    control = reference_run(campaign)
    log(f"reference run: {campaign.reference_metrics_bytes} bytes of metrics; control run {campaign.reference_seconds:.1f} s")
    log(_trial_line(control))
    rng = random.Random(seed)
    done, interrupted, unkilled = [], [], 0
    for index in range(3 * trials):
        if len(done) == trials:
            break
        if time.monotonic() - start > time_limit_s:
            log(f"time limit of {time_limit_s:.0f} s reached after {len(done)} trials")
            break
        trial = kill_trial(campaign, f"kill-{index:03d}", rng, max_kills)
        log(_trial_line(trial))
        if trial.kills == 0 and trial.identical:
            unkilled += 1  # every kill moment fell after the run had finished: not a trial
            continue
        done.append(trial)
    for index in range(sigint_trials):
        if time.monotonic() - start > time_limit_s:
            break
        trial = sigint_trial(campaign, f"sigint-{index:03d}", rng)
        interrupted.append(trial)
        log(_trial_line(trial))
    return Summary(done, interrupted, trials, time.monotonic() - start, control, unkilled)


def _trial_line(trial: Trial) -> str:
    moments = ", ".join(
        f"{s.trigger}@{s.metrics_bytes_at_signal if s.wrote_metrics_before_signal else 'start-up'}"
        f"{'+tmp' if s.temporary_at_signal else ''}"
        for s in trial.sessions if s.signalled
    )
    verdict = "identical" if trial.identical else ("DIFFERENT" if trial.survived else "FAILED")
    line = f"{trial.name}: {len(trial.sessions)} sessions, {trial.kills} signals [{moments}] -> {verdict}"
    details = trial.differences + trial.torn + ([trial.note] if trial.note else [])
    return line + "".join(f"\n    {detail}" for detail in details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="N-MNIST root (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=20, help="SIGKILL trials (default: %(default)s)")
    parser.add_argument("--sigint-trials", type=int, default=2, help="Ctrl-C trials (default: %(default)s)")
    parser.add_argument("--max-kills", type=int, default=3, help="most SIGKILLs per trial (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and of the training run")
    parser.add_argument("--generations", type=int, default=240, help="generations per run (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="no new trial after this many seconds")
    parser.add_argument("--work-dir", type=Path, help="where the runs go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder even when everything passed")
    parser.add_argument("--no-jax-cache", action="store_true", help="recompile in every session (slower)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="eggroll-fault-injection-"))
    summary = run_campaign(
        work_dir, args.data, args.trials, args.sigint_trials, args.seed, args.generations, args.max_kills,
        args.time_limit, not args.no_jax_cache,
    )
    figures = summary.figures()
    print(
        f"SIGKILL: trials {figures['trials']}/{figures['requested']}, survived {figures['survived']}, "
        f"identical {figures['identical']}; {figures['sigkills']} kills {figures['kills_by_trigger']}, "
        f"{figures['kills_in_start_up']} in start-up (before the session's first metrics write), "
        f"{figures['kills_leaving_a_temporary_file']} in the middle of a file write; "
        f"torn checkpoints {figures['torn_checkpoints']}"
    )
    print(
        f"SIGINT: trials {figures['sigint_trials']}, graceful and identical after resume "
        f"{figures['sigint_graceful_and_identical']}"
    )
    print(
        f"control (a second uninterrupted run): {'identical' if figures['control_identical'] else 'DIFFERENT'}; "
        f"{figures['trials_finished_before_any_kill']} trials finished before their kill moment (not counted)"
    )
    print(f"compared with the uninterrupted run, excluding only the timing fields {EXCLUDED_FIELDS}")
    print(f"total {figures['seconds']} s; runs in {work_dir}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    if summary.ok and not args.keep and args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
