"""An existing, unmodified Open311 client library talks to the server over real HTTP
(R-DX-1). `georeport` (PyPI, GeoReport v2 wrapper) reads services, definitions and requests
in JSON and XML; it cannot post, so posting is done the way clients post: a form-encoded
body to requests.{format} with api_key."""

from __future__ import annotations

import pytest

georeport = pytest.importorskip("georeport")

from tests.open311.conftest import OPEN311_KEY  # noqa: E402


def test_georeport_reads_what_the_server_serves(client, spot, partner_keys, live_server):
    lat, long = spot
    with live_server() as base:
        import requests

        posted = requests.post(
            f"{base}/open311/v2/requests.json",
            data={
                "api_key": OPEN311_KEY,
                "service_code": "03001",
                "lat": lat,
                "long": long,
                "description": "垃圾桶满溢",
            },
            timeout=10,
        )
        assert posted.status_code == 200, posted.text
        request_id = posted.json()[0]["service_request_id"]

        for fmt in ("json", "xml"):
            city = georeport.GeoReport(
                f"{base}/open311/v2", jurisdiction="350200", output_format=fmt
            )
            services = city.get_service_list()
            assert any(s["service_code"] == "03001" for s in services)
            definition = city.get_service_definition("03001")
            assert definition["service_code"] == "03001"
            found = city.get_service_requests(service_request_id=request_id)
            # xmltodict turns a single <request> into a dict, a JSON array stays a list.
            found = found if isinstance(found, list) else [found]
            assert [r["service_request_id"] for r in found] == [request_id]
            one = city.get_service_request(request_id)
            assert (one["status"], one["service_code"]) == ("open", "03001")
            assert float(one["lat"]) == pytest.approx(lat)
