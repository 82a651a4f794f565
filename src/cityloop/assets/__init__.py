"""The component registry: the "ID card" of every public asset (manhole cover, street lamp,
bin …) with its 17-digit identifier, class, position, grid, managing / owning / maintaining
units, responsible person and status (R-AC-6). A case about a component links to it, and
dispatch defaults to the component's owner."""
