"""Would averaging the mean parameters over recent generations validate better than the iterate itself?

    eggroll-snn train --seed 0 --generations 22320 --out RUN --set train.keep_checkpoints=1000 --set train.evaluate_test=false
    python benchmarks/checkpoint_average.py RUN [K ...]

Reads every checkpoint of a run folder (one per ``train.checkpoint_every`` generations; keep them
all with a large ``train.keep_checkpoints``) and scores on the run's validation split the mean
parameters of each checkpoint ("raw") and their average over the newest K checkpoints up to it
(a uniform window of K x checkpoint_every generations, Polyak averaging of the ES iterate). It
prints, per column, the best validation accuracy and the generation of it, the mean accuracy over
the second half of the run, where the curve is flat, and the lowest validation loss. The test
split is never read. Writes ``RUN/checkpoint_average.jsonl``, one line per checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

from eggroll_snn import checkpoint
from eggroll_snn import config as config_module
from eggroll_snn.scoring import accuracy_report, mean_cross_entropy, predict_logits
from eggroll_snn.training import step as step_module
from eggroll_snn.training.data import prepare_data
from eggroll_snn.training.loop import initial_state


def checkpoint_params(run: Path, config) -> tuple[list[int], list]:
    """Generations and mean parameters (numpy) of every checkpoint of ``run``, oldest first."""
    network = config.network_config()
    state, _ = initial_state(config, step_module.strategy_from_config(config), network)
    like = jax.eval_shape(lambda: state)
    files = sorted((run / "checkpoints").glob("gen-*.json"))
    generations = [json.loads(path.read_text())["generation"] for path in files]
    params = [jax.tree_util.tree_map(np.asarray, checkpoint.load_tree(path, like).strategy.params) for path in files]
    return generations, params


def main() -> None:
    run = Path(sys.argv[1])
    windows = [int(k) for k in sys.argv[2:]] or [5, 10, 20, 50]
    config = config_module.load(run / "config.toml")
    network = config.network_config()
    data, _ = prepare_data(config, progress=False)
    labels = np.asarray(data.validation_labels)

    def score(params) -> tuple[float, float]:
        logits = predict_logits(params, data.validation_frames, network, config.train.eval_batch_size)
        accuracy = accuracy_report(logits.argmax(axis=1), labels, network.num_classes)["accuracy"]  # the trainer's own figure
        return accuracy, mean_cross_entropy(logits, labels)

    generations, params = checkpoint_params(run, config)
    rows = []
    with open(run / "checkpoint_average.jsonl", "w") as out:
        for index, generation in enumerate(generations):
            row = {"generation": generation, "raw": score(params[index])}
            for k in windows:
                if index + 1 >= k:
                    window = params[index + 1 - k : index + 1]
                    row[f"average of {k}"] = score(jax.tree_util.tree_map(lambda *leaves: np.mean(leaves, axis=0), *window))
            rows.append(row)
            out.write(json.dumps(row) + "\n")
    half = generations[-1] // 2
    print(f"{run}: {len(generations)} checkpoints, validation on {len(labels)} recordings")
    print("| parameters | best validation (generation) | mean validation, generations > %d | lowest validation loss |" % half)
    print("|---|---:|---:|---:|")
    for column in ["raw"] + [f"average of {k}" for k in windows]:
        scored = [(row[column], row["generation"]) for row in rows if column in row]
        (best, _), best_generation = max(scored, key=lambda item: item[0][0])
        late = [accuracy for (accuracy, _), generation in scored if generation > half]
        print(
            f"| {column} | {100 * best:.1f} % ({best_generation}) | {100 * np.mean(late):.2f} % | "
            f"{min(loss for (_, loss), _ in scored):.3f} |"
        )


if __name__ == "__main__":
    main()
