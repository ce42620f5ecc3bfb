"""The web page and its static files (service/api/routes/page.py)."""

from __future__ import annotations


def test_page_has_the_transfer_and_sample_forms(client):
    html = client.get("/").text
    assert 'id="transfer-form"' in html and 'id="sample-form"' in html
    assert client.get("/static/app.js").status_code == 200
