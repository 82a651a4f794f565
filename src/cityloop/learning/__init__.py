"""Learning from the city's own history (issue 18).

Owns: the imported history of an older system (`import-history`), the suggester of classes and
departments trained from it and from closed cases (versioned rows; retrained by the worker),
the record of every suggestion and whether the operator took it (live accuracy), the
meaning-based score the duplicate search of `intake.receive()` uses, integrity flags on
photos (reused photo by perceptual hash, EXIF time or place far from the report, photo older
than the check it documents), the random re-check draw (抽查) and the early warning per
street × class."""
