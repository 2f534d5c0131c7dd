"""The one exception type of the data package."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset on disk is missing, incomplete or malformed.

    The message always names the offending file or folder and says what to do about it.
    """
