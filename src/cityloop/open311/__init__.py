"""Open311 GeoReport v2 (`/open311/v2/`): an adapter at the edge over intake and cases, so
that existing Open311 apps and clients report into the loop and follow their requests.
Services are the taxonomy's classes; a request is a case, its id the case's public ticket."""
