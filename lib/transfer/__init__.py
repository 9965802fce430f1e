"""Export a session as JSON, and import such a file all or nothing, checked against the typed schema."""

from __future__ import annotations

from lib.transfer.archive import MAX_DEPTH, MAX_IMPORT_BYTES, export_json, export_session, import_session
from lib.transfer.schema import UNCHECKED, InvalidExport

__all__ = [
    "MAX_DEPTH", "MAX_IMPORT_BYTES", "UNCHECKED", "InvalidExport", "export_json", "export_session",
    "import_session"
]
