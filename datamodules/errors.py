"""The error every datamodule raises for missing or malformed data (its own module, so that every other module of
the package can import it)."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or file is missing or malformed; the message names it and how to fix it."""
