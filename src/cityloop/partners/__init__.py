"""Partner platforms (12345, 110, the public-safety platform, Open311 clients): their API
keys, the reports they forward (idempotent by their own ticket id), the link between their
ticket and our case, and the status changes pushed back to them through the outbox (R-IN-5)."""
