"""Feast's file-format objects, for ``FileSource(file_format=ParquetFormat())``.

skewless reads Parquet only, so ``ParquetFormat()`` is the one format there is;
``file_format="parquet"`` (or omitting it) means the same. See docs/configuration.md,
"Coming from Feast".
"""

from __future__ import annotations


class ParquetFormat:
    """Parquet: what every ``FileSource`` reads (Feast's ``feast.data_format.ParquetFormat``)."""

    def __repr__(self) -> str:
        return "ParquetFormat()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParquetFormat)

    def __hash__(self) -> int:
        return hash("parquet")


__all__ = ["ParquetFormat"]
