"""Media: the photos and voice notes that travel with a case (evidence). Owns their checks
(real images only, size and pixel limits against decompression bombs, no user-chosen paths),
their EXIF evidence (time and GPS), and where the bytes are kept (R-IN-2, R-HD-1, R-CL-2).
Cases refer to media by id."""
