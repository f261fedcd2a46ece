"""Raw lab data in: metabolic-cart exports and force recordings become the trial table.

``retrosim ingest <folder> --out <dir>`` (or :func:`ingest_folder`) reads a lab folder, a
protocol sheet (:mod:`retrosim.ingest.protocol`) naming which stretch of which raw file was
which condition, the breath-by-breath cart exports (:mod:`retrosim.ingest.cart`) and the
vertical force recordings (:mod:`retrosim.ingest.force`), and writes the trial table of
``retrosim fit`` (:mod:`retrosim.ingest.table`), a per-stage table, a per-contact table, a
QC report with figures (:mod:`retrosim.ingest.report`) and a record of the settings and
input hashes, all at once into one folder. Bad input raises one
:class:`~retrosim.errors.InputError` naming the file, row or stage and what was expected,
before anything is written. :mod:`retrosim.ingest.synthetic` makes lab folders with known
truth (labelled synthetic).
"""

from __future__ import annotations

from retrosim.ingest.pipeline import (
    IngestOptions,
    IngestResult,
    ingest_folder,
    process_folder,
    write_results,
)
from retrosim.ingest.protocol import PROTOCOL_SCHEMA, protocol_schema_table, read_protocol

__all__ = [
    "PROTOCOL_SCHEMA",
    "IngestOptions",
    "IngestResult",
    "ingest_folder",
    "process_folder",
    "protocol_schema_table",
    "read_protocol",
    "write_results",
]
