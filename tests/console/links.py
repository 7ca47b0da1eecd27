"""Following a dashboard figure's link to the search, and counting what the search lists."""

from __future__ import annotations

import html
import re

from django.test import Client


def figure_link(page: str, testid: str, nth: int = 0) -> tuple[str, str]:
    """The figure shown by the `nth` link with this test id (as shown), and where it goes."""
    found = re.findall(rf'<a href="([^"]+)" data-testid="{testid}">([^<]+)</a>', page)
    href, shown = found[nth]
    return shown, html.unescape(href)


def search_count(client: Client, link: str) -> int:
    """How many messages the search behind `link` lists (fewer than a page of 50 in these tests)."""
    response = client.get(link)
    assert response.status_code == 200, response.content.decode()
    summary = re.search(r'data-testid="results-summary">(.*?)</p>', response.content.decode(), re.S)
    assert summary is not None
    counted = re.search(r"(\d+) messages?\b", summary.group(1))
    return int(counted.group(1)) if counted else 0
