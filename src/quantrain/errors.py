"""The error tree: every user-facing failure is a ``QuantrainError``.

The CLI maps these to exit status 2 with the message only (no traceback); anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class QuantrainError(Exception):
    """Base of every error a user can cause and fix."""


class ConfigError(QuantrainError):
    """A job file or option is wrong: names the key, the file and the allowed values."""


class DataError(QuantrainError):
    """Input market data is unusable: names the file, the rows and the fix."""


class ServiceUnavailableError(QuantrainError):
    """A service (an exchange) could not be reached or kept failing: nothing the user typed is
    wrong, so the CLI exits 1 rather than 2; the message names the service and the cause."""


class ModelError(QuantrainError):
    """A model family was asked for something it cannot do (unknown key, unsupported task)."""


class ExportParityError(QuantrainError):
    """ONNX output differs from the native model beyond tolerance: packaging stops."""


class PackageError(QuantrainError):
    """A model package is incomplete, corrupted or incompatible with the caller's inputs."""


class StoreError(QuantrainError):
    """The model store refused an operation (missing version, conflict, bad URI)."""


class StoreConflictError(StoreError):
    """Another writer won a race: it moved a channel pointer between our read and our write, or
    published the version we were pushing. Nothing of ours was written."""


class PromotionRefused(StoreError):
    """``--if-better`` found the candidate no better than what the channel holds."""


class TrackingError(QuantrainError):
    """The experiment tracker (MLflow) could not be reached or refused a run; the packages and
    the run record are in the store regardless."""
