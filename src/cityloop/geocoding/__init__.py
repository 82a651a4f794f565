"""Geocoding (地理编码子系统): the city's own gazetteer of doorplates, POIs and places, imported
from CSV or GeoJSON, and `geocode(address)`: the administrative prefix is read against the
region tree, the rest is fuzzy-matched (rapidfuzz) against the gazetteer. An address it cannot
place confidently gives no location — never a guessed one (R-IN-3, R-IN-4)."""
