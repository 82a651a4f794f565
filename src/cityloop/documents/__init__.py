"""Documents (文书): the one document generator of the platform.

Owns the issuers (bureaus that number documents), the document kinds with their templates
(data: rows seeded from `templates/*.txt`, editable by an administrator), the numbering
sequences per (issuer, year, kind) — gap-free and never repeating, because the sequence row is
locked and moved in the caller's transaction — the PDF rendering with an embedded Chinese font,
the stored bytes (one storage function) and the dossier export. Flows (enforcement, later
supervision notices and bulletins) call `service.issue_document` and hash the returned
`Document.sha256` into their own timelines; this package imports no flow.
"""
