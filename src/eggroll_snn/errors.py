"""The one error hierarchy of eggroll-snn.

Every error a user can provoke with bad input is an :class:`EggrollSNNError`; its message names
the file or option, what was wrong, and what to do about it.
"""


class EggrollSNNError(Exception):
    """Base class of every error eggroll-snn raises on purpose."""


class DataFormatError(EggrollSNNError, ValueError):
    """A data file or data folder is not in the expected format (names the file)."""


class ArchiveError(DataFormatError):
    """An archive is corrupt or unsafe to extract (path traversal, links, oversize members)."""


class DownloadError(EggrollSNNError, OSError):
    """A download failed or its checksum did not match."""


class CacheError(EggrollSNNError, OSError):
    """The frame cache cannot be written (full or read-only disk; names the cache folder)."""


class ConfigError(EggrollSNNError, ValueError):
    """A configuration option is missing, of the wrong type or out of range (names the option)."""


class CheckpointError(EggrollSNNError, ValueError):
    """A checkpoint is corrupt, incomplete or belongs to a different configuration."""


class TrainingError(EggrollSNNError, RuntimeError):
    """Training cannot go on (e.g. every member's fitness was NaN)."""


class ExportError(EggrollSNNError, ValueError):
    """An export cannot be written, or its re-simulation disagrees with the trained model (names the file)."""
