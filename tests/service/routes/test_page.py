"""The web page and its static files (service/api/routes/page.py)."""

from __future__ import annotations


def test_page_has_both_slots_the_examples_and_each_picture_route(client):
    html = client.get("/").text
    assert 'id="slot-image"' in html and 'id="slot-attributes"' in html and 'id="examples"' in html
    for kind in ("transfer", "sample", "neutralize", "interpolate"):
        assert f'id="{kind}-run"' in html and f'id="{kind}-result"' in html
    assert client.get("/static/app.js").status_code == 200
    assert "image-rendering: pixelated" in client.get("/static/style.css").text
