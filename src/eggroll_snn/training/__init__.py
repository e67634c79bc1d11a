"""The trainer: a config's data, network and strategy in, a run folder out.

* :mod:`.data`: the training and validation parts on the device, the shift augmentation;
* :mod:`.step`: the method a config names, one generation as a pure compiled function;
* :mod:`.evaluators`: where the population is evaluated (this process, a device mesh, an external
  evaluator), one factory for all three;
* :mod:`.progress`: the progress bar or plain progress lines;
* :mod:`.loop`: the generation loop, validation, checkpoints, the selected model and its test score.

The files the trainer writes are :mod:`eggroll_snn.run_folder`'s, which is what every consumer
(``evaluate``, ``plot``, ``export``, ``compare``) reads; none of them imports this package.
"""

from eggroll_snn.training.data import TrainingData, prepare_data, shift_frames
from eggroll_snn.training.loop import TrainResult, TrainingState, train
from eggroll_snn.training.evaluators import PopulationEvaluation, local_evaluator
from eggroll_snn.training.step import chunk_length, make_generation_step, strategy_from_config

__all__ = [
    "TrainingData",
    "prepare_data",
    "shift_frames",
    "TrainResult",
    "TrainingState",
    "train",
    "chunk_length",
    "PopulationEvaluation",
    "local_evaluator",
    "make_generation_step",
    "strategy_from_config",
]
