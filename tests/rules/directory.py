"""The sandbox seed's status pages as the rules see them (a ``PageDirectory``), for tests that load
rules offline."""

from __future__ import annotations

from typing import Any

import yaml

from bridge.domain import PageComponent, PageDirectory, PageInfo
from tests.conftest import SEED_PATH


def directory_from_seed() -> PageDirectory:
    seed = yaml.safe_load(SEED_PATH.read_text())
    pages = []
    for p in seed["status_pages"]:
        comps: list[PageComponent] = []

        def walk(items: list[dict[str, Any]], sub: str | None) -> None:
            for item in items:
                if "component" in item:
                    comps.append(PageComponent(item["component"]["id"], item["component"]["name"], None, sub))
                elif "group" in item:
                    for c in item["group"]["components"]:
                        comps.append(PageComponent(c["id"], c["name"], item["group"]["name"], sub))
                elif "sub_page" in item:
                    walk(item["sub_page"]["items"], item["sub_page"]["name"])

        walk(p["structure"], None)
        pages.append(PageInfo(p["id"], p["name"], tuple(comps)))
    return PageDirectory(tuple(pages))
