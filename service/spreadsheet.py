"""Spreadsheet-safe CSV cells: a text that a spreadsheet would run as a formula is written with a leading `'`.

Every CSV the debugger writes for people to open (points, issues, suggestions, clusters, the labelling queue;
the original-format export when asked with `spreadsheet_safe`) passes its cells through `safe_cell`. JSONL,
Label Studio JSON and the default original-format export keep the data exact.
"""

from __future__ import annotations

from typing import Any

# A cell starting with one of these is read as a formula (or its start is dropped, hiding what follows) by
# Excel, LibreOffice or Google Sheets: the OWASP "CSV Injection" list (= + - @ tab CR), with LF and NUL
# (OWASP ASVS 1.2.10) for good measure.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def safe_cell(value: Any) -> Any:
    """The cell with a leading `'` when it is text starting with a formula trigger (the OWASP fix: the
    spreadsheet then shows the text); numbers, such as a negative coordinate, and other text pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
