"""Web: the console's pages — login and each role's desk (受理, 派遣, 处置), the case page, the
inspector's phone app (城管通) with its offline outbox, the citizen's H5 page, the leaders' big
screen (一张图), the hotline desk's consultations and calls, the evaluation pages (综合评价)
and the administration pages. Server-rendered Jinja2 + HTMX over the same
services as the API; Leaflet, leaflet.heat, ECharts and HTMX are served by the app itself.

It owns no tables: `service.py` holds the queries the pages read, `schemas.py` the forms,
`page.py` the signed session cookie and CSRF token, `api.py` the router.
"""
