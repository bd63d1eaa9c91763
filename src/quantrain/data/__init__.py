"""Market data in: read any supported file, alias its columns, validate it into the OHLCV contract.

Other modules import only from here; the submodules are implementation detail.
"""

from __future__ import annotations

from quantrain.data.discover import DataSource, discover, symbol_key
from quantrain.data.readers import SUPPORTED_EXTENSIONS, read_ohlcv, read_raw
from quantrain.data.resample import ResampleReport, resample_ohlcv
from quantrain.data.validate import (
    LoadedOHLCV,
    ValidationReport,
    format_timeframe,
    parse_timeframe,
    validate_ohlcv,
)
from quantrain.data.writers import check_output_file, write_frame

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DataSource",
    "LoadedOHLCV",
    "ResampleReport",
    "ValidationReport",
    "check_output_file",
    "discover",
    "format_timeframe",
    "parse_timeframe",
    "read_ohlcv",
    "read_raw",
    "resample_ohlcv",
    "symbol_key",
    "validate_ohlcv",
    "write_frame",
]
