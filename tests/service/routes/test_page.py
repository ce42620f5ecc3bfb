"""The web page and its static files (service/api/routes/page.py)."""

from __future__ import annotations


def test_page_has_a_form_for_each_picture_route(client):
    html = client.get("/").text
    assert 'id="transfer-form"' in html and 'id="sample-form"' in html
    assert 'id="neutralize-form"' in html and 'id="interpolate-form"' in html
    assert client.get("/static/app.js").status_code == 200
