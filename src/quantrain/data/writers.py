"""Writing frames the user asked for (``--out``): checked before any work is lost to a typo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quantrain.errors import DataError

#: Output formats by suffix; anything else is refused rather than silently written as CSV.
FORMATS = (".csv", ".parquet")


def check_output_file(out: str | Path) -> Path:
    """``out`` as a path a frame can be written to: a known suffix, an existing directory."""
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise DataError(
            f"--out {out}: unknown format {path.suffix or '(no suffix)'!r}; fix: name the "
            f"file with one of {', '.join(FORMATS)}"
        )
    parent = path.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise DataError(f"--out {out}: the directory {parent} {state}; fix: create it first")
    if path.is_dir():
        raise DataError(f"--out {out} is a directory; fix: give a file name")
    return path


def write_frame(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write ``frame`` as CSV or Parquet by the suffix of ``out``; OS errors name the file."""
    path = check_output_file(out)
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    except OSError as error:
        raise DataError(f"--out {out}: cannot write: {error.strerror or error}") from None
    return path
