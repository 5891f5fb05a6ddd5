"""A `.npy` file written block by block, for arrays that do not fit in memory (a dataset's frames)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np


class NpyAppender:
    """Appends rows of a fixed shape and dtype to one `.npy` file that `np.load(mmap_mode="r")` opens.

    The header is written for zero rows and rewritten on close with the final count; numpy pads the
    header so the row count can grow in place.
    """

    def __init__(self, path: str | Path, row_shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._write_header()
        self._header_bytes = self._file.tell()

    def _write_header(self) -> None:
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.rows, *self.row_shape),
        }
        np.lib.format.write_array_header_1_0(self._file, header)

    def append(self, rows: np.ndarray) -> None:
        """Writes `rows` of shape `[n, *row_shape]` at the end of the array."""
        if rows.shape[1:] != self.row_shape or rows.dtype != self.dtype:
            raise ValueError(
                f"{self.path.name}: expected rows [n, {self.row_shape}] {self.dtype}, got {rows.shape} {rows.dtype}"
            )
        self._file.write(np.ascontiguousarray(rows).tobytes())
        self.rows += len(rows)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.seek(0)
        self._write_header()
        if self._file.tell() != self._header_bytes:
            raise RuntimeError(f"{self.path}: the .npy header changed size; the file is not valid")
        self._file.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
