"""cityloop: an open digital city-management platform (数字城管 / 一网统管).

The package is made of domain packages (taxonomy, places, org, assets, cases, intake,
supervision, …) and thin edges (app, cli) that compose them; see docs/architecture.md.
"""

__version__ = "0.1.0"
