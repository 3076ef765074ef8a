"""The example files shipped inside distdl: run configs (`digits_mlp.toml`, ...) and the SLURM
template (`train.sbatch`), so a `pip install` has something to train and to copy.

`distdl train digits_mlp` and `distdlrun -np 2 digits_mlp` find a config by its bare name;
`distdl configs` lists them and `distdl configs show NAME` prints one. A file of that name in
the current folder always wins over a shipped one.
"""
from __future__ import annotations

import os
from importlib import resources

from ..errors import ConfigError, did_you_mean

__all__ = ["names", "path", "text", "resolve"]

_SUFFIXES = (".toml", ".sbatch")


def names() -> list[str]:
    """The shipped files, each by its short name: configs without `.toml`, `train.sbatch` whole."""
    found = []
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".toml"):
            found.append(entry.name.removesuffix(".toml"))
        elif entry.name.endswith(".sbatch"):
            found.append(entry.name)
    return sorted(found)


def _file_name(name: str) -> str | None:
    """The file behind a short name (`digits_mlp` or `digits_mlp.toml`), or None."""
    for candidate in (name, name + ".toml"):
        if candidate.endswith(_SUFFIXES) and os.path.basename(candidate) == candidate \
                and resources.files(__name__).joinpath(candidate).is_file():
            return candidate
    return None


def path(name: str) -> str:
    """The file system path of a shipped file (configs are plain files inside the package).

    Args:
        name: a short name from `names()`, with or without `.toml`.
    """
    found = _file_name(name)
    if found is None:
        shipped = names()
        raise ConfigError(f"No shipped config named {name!r}; shipped are: {', '.join(shipped)}."
                          f"{did_you_mean(name, shipped)}")
    return os.fspath(resources.files(__name__).joinpath(found))


def text(name: str) -> str:
    """The contents of a shipped file, to print and copy.

    Args:
        name: a short name from `names()`, with or without `.toml`.
    """
    with open(path(name), encoding="utf-8") as fh:
        return fh.read()


def resolve(config: str) -> str | None:
    """The file a `CONFIG` argument means: the path itself when it is a file, else the shipped
    config of that bare name; None when it is neither.

    Args:
        config: what the user typed after `distdl train` or `distdlrun -np N`.
    """
    if os.path.isfile(config):
        return config
    found = _file_name(config)
    return path(found) if found and found.endswith(".toml") else None
