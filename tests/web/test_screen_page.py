"""The leaders' big screen at 1920×1080 (R-AN-1, R-AN-2, R-AN-3): the city's boundaries are
the base map, open cases are drawn in their traffic-light colours over a heat layer, the
counters hold numbers and the four charts are drawn — checked on the screenshot's pixels, not
just on the page's markup."""

from __future__ import annotations

import io

from playwright.sync_api import expect

from cityloop.cases.states import OPEN_STATES
from tests.web.conftest import SCREENSHOTS, LiveServer, login

LIGHTS = {"green": (0x1A, 0x9E, 0x55), "yellow": (0xE8, 0xA3, 0x17), "red": (0xD6, 0x2D, 0x20)}


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def test_the_big_screen_draws_the_map_and_the_charts(live_server: LiveServer, new_context) -> None:
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = login(new_context(viewport={"width": 1920, "height": 1080}), "leader")
    expect(page).to_have_url(f"{live_server.url}/screen")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    assert page.locator("body").get_attribute("data-district") == "6"
    assert page.locator("body").get_attribute("data-street") == "54"
    with live_server.session() as session:
        from sqlalchemy import func, select

        from cityloop.cases.models import Case

        open_cases = session.scalar(
            select(func.count()).select_from(Case).where(Case.state.in_(sorted(OPEN_STATES)))
        )
    assert open_cases and page.locator("body").get_attribute("data-cases") == str(open_cases)
    assert int(page.locator("#counter-open_cases").inner_text()) == open_cases
    assert int(page.locator("#counter-today_reports").inner_text()) > 0

    # Every chart has drawn something on its canvas.
    for chart in ("trend", "sources", "classes", "departments"):
        painted = page.evaluate(
            """id => {
                const canvas = document.querySelector('#' + id + ' canvas');
                const w = canvas.width, h = canvas.height;
                const data = canvas.getContext('2d').getImageData(0, 0, w, h).data;
                let n = 0;
                for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { n++; } }
                return n;
            }""",
            f"chart-{chart}",
        )
        assert painted > 2000, (chart, painted)

    shot = page.screenshot(path=str(SCREENSHOTS / "big-screen.png"))
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    assert image.size == (1920, 1080)
    box = page.locator("#s-map").bounding_box()
    assert box is not None and box["width"] > 800 and box["height"] > 800
    area = image.crop(
        (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    ).resize((int(box["width"]) // 2, int(box["height"]) // 2), Image.Resampling.NEAREST)
    pixels = [area.getpixel((x, y)) for y in range(area.height) for x in range(area.width)]
    # The districts are drawn: their fill differs from the empty map's background.
    background = (0x07, 0x1A, 0x33)
    filled = sum(1 for p in pixels if not _near(p, background, 12))
    assert filled > len(pixels) * 0.2, filled
    # The open cases are there in their traffic-light colours.
    coloured = {name: sum(1 for p in pixels if _near(p, rgb)) for name, rgb in LIGHTS.items()}
    assert sum(coloured.values()) > 50, coloured
    assert not page.js_errors
