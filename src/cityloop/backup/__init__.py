"""Backup and restore of a whole city: `cityloop backup` / `cityloop restore`.

Owns copying the database out and back in, online: SQLite through sqlite3's backup API (a
consistent snapshot while the server keeps writing; the backup is itself a SQLite file),
PostgreSQL through `pg_dump` / `pg_restore` (custom format, one snapshot, restored in one
transaction). Each backup carries a fingerprint — row counts of every table and a digest over
every case timeline's hash chain — written beside it, so that a restore can prove it brought
back the same city. Uploaded photos and voice notes are files under CITYLOOP_DATA_DIR/media
and are not part of it.
"""
