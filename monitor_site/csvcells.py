"""Cells of every CSV file Monitor writes, safe to open in a spreadsheet.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula (CSV injection), and names, reasons and
addresses come from outside. Such a cell gets a leading single quote (the OWASP rule),
which the spreadsheet shows as text. Numbers, dates and empty values are ours and pass
unchanged; so does every text cell that starts otherwise (ISO 8601 timestamps start with
a digit).

Every CSV writer goes through this module: `csv_writer` for a file, `csv_lines` for a
streamed response, `safe_cell` for a library that writes the file itself
(django-import-export's `Resource.export_field`). Both writers use RFC 4180's dialect
(CRLF between rows): with another line terminator the csv module no longer quotes a
cell that holds a lone CR, and the row breaks in two.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with a `'` in front if it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Lines:
    """A file for csv.writer that hands each written line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


class SafeWriter:
    """A csv.writer whose every cell passes through `safe_cell`."""

    def __init__(self, file: Any) -> None:
        self._writer = csv.writer(file)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(file: Any) -> SafeWriter:
    """`csv.writer(file)`, escaping formulae in every row it writes."""
    return SafeWriter(file)


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row (the header first) as one escaped CSV line, for a StreamingHttpResponse."""
    writer = SafeWriter(_Lines())
    for row in rows:
        yield writer.writerow(row)
