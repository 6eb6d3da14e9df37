"""The project's exceptions. Every message says what was wrong and what to do instead."""

from __future__ import annotations

__all__ = ["MechinterpError", "ConfigError", "DataError", "DataUnavailableError", "ShapeError"]


class MechinterpError(ValueError):
    """Base class for errors caused by a bad input or setting (not by a bug)."""


class ConfigError(MechinterpError):
    """A configuration field, profile, device or command-line value is invalid."""


class DataError(MechinterpError):
    """A data source is unknown, malformed, or asked for classes it does not hold."""


class DataUnavailableError(DataError):
    """A data source needs a download that cannot happen here (for example offline)."""


class ShapeError(MechinterpError):
    """A tensor does not have the shape an operation needs."""


class StaleStudyError(MechinterpError):
    """A stored study (results shipped with the package so that a CPU build need not compute
    every seed) no longer matches what the code computes."""
