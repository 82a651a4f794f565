"""Pure helpers that import no domain package."""
