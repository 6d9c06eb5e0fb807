"""Where and with what a benchmark ran: library versions and hardware, for results.json."""

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Dict, Optional

PACKAGES = {
    "spacy": "spacy",
    "thinc": "thinc",
    "hybridnlp": "hybridnlp",
    "numpy": "numpy",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "transformers": "transformers",
    "spacy_transformers": "spacy-transformers",
    "python_crfsuite": "python-crfsuite",
}


def versions() -> Dict[str, Optional[str]]:
    """Versions of Python and the libraries that decide speed and scores (None when a
    package is not installed). Read from package metadata, so nothing heavy is imported."""
    found: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for key, dist in PACKAGES.items():
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[key] = None
    return found


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as file_:
            for line in file_:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> Optional[float]:
    """Total RAM in GiB, where the OS tells."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def gpu_name() -> Optional[str]:
    """The GPU's name, from nvidia-smi or a torch that is already loaded; None without one."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                return ", ".join(names)
        except (OSError, subprocess.SubprocessError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def hardware() -> Dict[str, object]:
    """CPU model, logical cores (and those this process may use), RAM, GPU name, OS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": round(memory_gb(), 1) if memory_gb() else None,
        "gpu": gpu_name(),
        "platform": platform.platform(),
    }
