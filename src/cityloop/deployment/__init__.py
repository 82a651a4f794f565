"""What a production deployment must get right before it goes live: `cityloop check`, the
doctor that names every unsafe setting (secrets, database, debug, backups, media, TLS)."""
