"""Profiles: named spaCy configs shipped with the package, one per task.

A profile name (``fast``, ``accurate``, ...) resolves to ``configs/{name}_{task}.cfg`` for
the task of the corpus (``ner`` or ``textcat``); anything else is taken as a path to a
config file of the user's own.
"""

from pathlib import Path
from typing import List, Union

from .errors import Errors

CONFIG_DIR = Path(__file__).parent / "configs"
TASKS = ("textcat", "ner")


def known_profiles() -> List[str]:
    """Names of the profiles shipped in the package, e.g. ``["accurate", "fast"]``."""
    names = set()
    for path in CONFIG_DIR.glob("*.cfg"):
        name, _, task = path.stem.rpartition("_")
        if task in TASKS:
            names.add(name)
    return sorted(names)


def resolve_profile(profile: Union[str, Path], task: str) -> Path:
    """The config file for a profile name and task, or the given config path itself."""
    path = Path(profile)
    if path.suffix == ".cfg" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(Errors.E200.format(name=profile, known=known_profiles()))
        return path
    if str(profile) not in known_profiles():
        raise ValueError(Errors.E200.format(name=profile, known=known_profiles()))
    config = CONFIG_DIR / f"{profile}_{task}.cfg"
    if not config.exists():
        raise ValueError(Errors.E201.format(profile=profile, task=task))
    return config
