"""The sandbox seed: API keys and status pages with their structure (YAML, see README.md here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bridge.sandbox.state import Component, Page, new_id

WRITE_SCOPE = "status_pages.publish_updates"

# The built-in seed: package data, so `statusbridge sandbox` and `statusbridge demo` show the same
# pages from a checkout, an installed wheel or the image. `rules/sandbox/seed.yaml` links to it.
BUILTIN_SEED = "seed.yaml"


class SeedError(Exception):
    """The seed file is unusable; the message names the file and the key."""


@dataclass
class Seed:
    """A parsed seed: API keys with their scopes, the pages, and the rate limit overrides."""

    keys: dict[str, set[str]]
    pages: list[Page]
    rate_limit: dict[str, float] = field(default_factory=dict)


def _component(
    raw: Any, where: str, group: str | None, sub_page: str | None
) -> tuple[Component, dict[str, Any]]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise SeedError(f"{where}: a component needs a name")
    comp = Component(str(raw.get("id") or new_id()), raw["name"], group, sub_page)
    return comp, {
        "component_id": comp.id,
        "name": comp.name,
        "hidden": bool(raw.get("hidden", False)),
        "display_uptime": bool(raw.get("display_uptime", True)),
    }


def _group(raw: Any, where: str, sub_page: str | None, comps: dict[str, Component]) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise SeedError(f"{where}: a group needs a name")
    items = []
    for i, c in enumerate(raw.get("components") or []):
        comp, item = _component(c, f"{where}.components[{i}]", raw["name"], sub_page)
        comps[comp.id] = comp
        items.append(item)
    return {
        "id": str(raw.get("id") or new_id()),
        "name": raw["name"],
        "description": str(raw.get("description", "")),
        "hidden": bool(raw.get("hidden", False)),
        "display_aggregated_uptime": bool(raw.get("display_aggregated_uptime", True)),
        "components": items,
    }


def _items(
    raw: Any, where: str, sub_page: str | None, comps: dict[str, Component], *, allow_sub: bool
) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise SeedError(f"{where}: expected a list")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping) or len(item) != 1:
            raise SeedError(f"{at}: each item is exactly one of component, group, sub_page")
        ((kind, value),) = item.items()
        if kind == "component":
            comp, entry = _component(value, at, None, sub_page)
            comps[comp.id] = comp
            out.append({"component": entry})
        elif kind == "group":
            out.append({"group": _group(value, at, sub_page, comps)})
        elif kind == "sub_page" and allow_sub:
            if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
                raise SeedError(f"{at}: a sub_page needs a name")
            name = value["name"]
            out.append(
                {
                    "sub_page": {
                        "id": str(value.get("id") or new_id()),
                        "name": name,
                        "items": _items(
                            value.get("items") or [], f"{at}.items", name, comps, allow_sub=False
                        ),
                    }
                }
            )
        else:
            raise SeedError(f"{at}: unknown item kind {kind!r}")
    return out


def parse_seed(raw: Any, source: str = "seed") -> Seed:
    """The Seed of an already parsed YAML document; raises SeedError naming ``source`` and the key
    that is wrong.
    """
    if not isinstance(raw, Mapping):
        raise SeedError(f"{source}: expected a mapping with api_keys and status_pages")
    unknown = set(raw) - {"api_keys", "status_pages", "rate_limit"}
    if unknown:
        raise SeedError(f"{source}: unknown keys {sorted(unknown)}")
    keys: dict[str, set[str]] = {}
    for i, k in enumerate(raw.get("api_keys") or []):
        if not isinstance(k, Mapping) or not isinstance(k.get("token"), str) or not k["token"]:
            raise SeedError(f"{source}: api_keys[{i}] needs a token")
        scopes = k.get("scopes") or []
        if not isinstance(scopes, list):
            raise SeedError(f"{source}: api_keys[{i}].scopes must be a list")
        keys[k["token"]] = {str(s) for s in scopes}
    pages = []
    for i, p in enumerate(raw.get("status_pages") or []):
        at = f"{source}: status_pages[{i}]"
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
            raise SeedError(f"{at} needs a name")
        comps: dict[str, Component] = {}
        structure = _items(p.get("structure") or [], f"{at}.structure", None, comps, allow_sub=True)
        subscribers = p.get("subscribers", 0)
        if not isinstance(subscribers, int) or subscribers < 0:
            raise SeedError(f"{at}.subscribers must be a non-negative integer")
        pages.append(
            Page(
                str(p.get("id") or new_id()),
                p["name"],
                subscribers,
                structure,
                comps,
                str(p.get("description", "")),
            )
        )
    rate = raw.get("rate_limit") or {}
    if not isinstance(rate, Mapping):
        raise SeedError(f"{source}: rate_limit must be a mapping")
    return Seed(keys, pages, {str(k): float(v) for k, v in rate.items()})


def builtin_seed_path() -> Path:
    """The built-in seed file (a real file: the package is never installed zipped)."""
    return Path(str(resources.files("bridge.sandbox") / BUILTIN_SEED))


def builtin_seed() -> dict[str, Any]:
    """The built-in seed, parsed and checked."""
    return load_seed_file(builtin_seed_path())


def load_seed_file(path: Path) -> dict[str, Any]:
    """The seed file's YAML as a mapping, checked by parse_seed; raises SeedError when the file cannot
    be read, is not YAML or is not a valid seed.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeedError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        # from None: PyYAML's error quotes the offending line, and a seed file lists API keys.
        raise SeedError(f"{path}: not valid YAML: {exc}") from None
    parse_seed(raw, str(path))
    return dict(raw)
