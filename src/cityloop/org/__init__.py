"""The organisation: departments and their hierarchy, staff users with roles and scopes,
passwords and bearer tokens, and the responsibility rules (class × place → department) that
tell dispatch who owns a problem (R-GR-3, R-DIS-1)."""
