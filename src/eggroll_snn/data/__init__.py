"""N-MNIST data: events, the dataset, frames and the frame cache.

The data path runs one way: ``.bin`` files -> events (:mod:`.events`) -> a dataset of
recordings (:class:`NMNIST`) -> frames ``(T, P, H, W)`` (:func:`events_to_frames`) -> one cached
array per split (:func:`load_split_frames`).
"""

from eggroll_snn.data import events
from eggroll_snn.data.cache import load_split_frames
from eggroll_snn.data.frames import FrameConfig, events_to_frames
from eggroll_snn.data.nmnist import NMNIST, SENSOR_SIZE

__all__ = ["events", "NMNIST", "SENSOR_SIZE", "FrameConfig", "events_to_frames", "load_split_frames"]
