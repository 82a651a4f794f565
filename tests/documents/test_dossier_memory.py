"""A 200-document dossier streams with memory that does not grow with it (issue 14,
Performance): the peak of Python's allocations while the archive streams stays a small part of
the archive's size."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

from cityloop.documents import service
from tests.documents.conftest import issue

DOCUMENTS = 200


def test_a_200_document_dossier_streams_in_bounded_memory(db_session, issuer, backend):
    kinds = ["inquiry_record", "inspection_record", "penalty_decision", "delivery_receipt"]
    for index in range(DOCUMENTS):
        issue(db_session, kind=kinds[index % len(kinds)])
    stored = sum(d.size for d in service.documents_of(db_session, "enforcement_case", 1))

    stream = service.export_dossier(db_session, "enforcement_case", 1)
    total, largest, tail = 0, 0, io.BytesIO()
    tracemalloc.start()
    try:
        for chunk in stream:
            total += len(chunk)
            largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored > 4_000_000 and total > stored * 0.9
    assert peak < total / 10 and peak < 1_000_000, (peak, total)
    assert largest < 1_000_000
    # and it is a whole archive: streamed again into memory, it opens and checks
    tail.write(b"".join(service.export_dossier(db_session, "enforcement_case", 1)))
    archive = zipfile.ZipFile(tail)
    assert len(archive.namelist()) == DOCUMENTS + 2 and archive.testzip() is None
