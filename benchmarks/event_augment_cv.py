"""Event-level augmentation on the real N-MNIST subset, chosen by 3-fold cross-validation (test not read):
configs/nmnist-small.toml with ``train.augment_event_copies`` copies of each training recording made by
one of tonic's event transforms (needs ``pip install tonic``), seed 0.

    python benchmarks/event_augment_cv.py OUT NAME [COPIES] [GENERATIONS]

NAME: spatial-jitter-1, spatial-jitter-2, time-jitter-10ms or drop-event-0.3 (see TRANSFORMS).
Prints the mean and standard deviation over the folds; the folds' runs are under OUT/NAME-cCOPIES.
"""
import sys

import tonic.transforms as T

from eggroll_snn.config import apply_overrides, load
from eggroll_snn.training.crossval import cross_validate

SENSOR = (34, 34, 2)
TRANSFORMS = {
    "spatial-jitter-1": T.SpatialJitter(sensor_size=SENSOR, var_x=1.0, var_y=1.0, clip_outliers=True),
    "spatial-jitter-2": T.SpatialJitter(sensor_size=SENSOR, var_x=2.0, var_y=2.0, clip_outliers=True),
    "time-jitter-10ms": T.TimeJitter(std=10_000, clip_negative=True, sort_timestamps=True),
    "drop-event-0.3": T.DropEvent(p=0.3),
}

out, name = sys.argv[1], sys.argv[2]
copies = int(sys.argv[3]) if len(sys.argv) > 3 else 2
generations = int(sys.argv[4]) if len(sys.argv) > 4 else 300
config = apply_overrides(load("configs/nmnist-small.toml"), {
    "data.root": "../shared/data/nmnist-small", "train.generations": generations, "train.augment_event_copies": copies,
})
result = cross_validate(config, 3, f"{out}/{name}-c{copies}", event_transform=TRANSFORMS[name])
folds = ", ".join(f"{100 * accuracy:.1f}" for accuracy in result["validation_accuracies"])
print(f"{name}, {copies} copies, {generations} generations: {100 * result['mean']:.1f} +- {100 * result['std']:.1f} % ({folds})")
