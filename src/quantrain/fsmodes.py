"""File modes for what quantrain publishes: the user's umask decides, not the temp-file API.

``mkstemp`` makes files 0600 and ``mkdtemp`` directories 0700 on purpose (private scratch).
A package, report or data file written through one and then renamed into place would keep
those modes, so a bot running as another user on a shared volume could not read it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UMASK = re.compile(r"^Umask:\s*([0-7]+)$", re.MULTILINE)


def current_umask() -> int:
    """The process umask, read without changing it (Linux ≥ 4.7 reports it in /proc)."""
    try:
        found = _UMASK.search(Path("/proc/self/status").read_text())
    except OSError:
        found = None
    if found:
        return int(found.group(1), 8)
    mask = os.umask(0o022)  # elsewhere: the classic swap (not thread-safe, but brief)
    os.umask(mask)
    return mask


def as_umask_allows(path: Path) -> None:
    """Give ``path`` (and, for a directory, everything under it) the modes a plain ``open``
    or ``mkdir`` would have: 0666 / 0777 minus the umask."""
    mask = current_umask()
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)
