"""Errors for people: each kind carries one sentence naming what is wrong."""


class DistdlError(Exception):
    """Base of every error distdl raises on purpose; the CLIs print it and exit 2."""


class ConfigError(DistdlError):
    """A bad name, option or config value (names the key and the allowed values)."""


class DataError(DistdlError):
    """Bad training or evaluation data (names the array, row or label)."""


class ShapeError(DistdlError):
    """Shapes that do not fit together (names the layer and both shapes)."""


class CheckpointError(DistdlError):
    """A checkpoint that cannot be written or read back (names the file)."""


class CommError(DistdlError):
    """A failure between ranks (names the rank and the operation)."""


def unknown_name(kind: str, name, valid) -> ConfigError:
    """Build the error for an unknown identifier, listing the valid names."""
    return ConfigError(f"Unknown {kind} {name!r}; valid names are: {', '.join(sorted(valid))}.")
