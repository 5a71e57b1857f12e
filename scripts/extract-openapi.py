#!/usr/bin/env python3
"""Re-extract ``tests/fixtures/openapi/incidentio-status-pages.openapi.json`` from its upstream.

The upstream is ``openapi.json`` as shipped in the PyPI sdist of ``incident-io`` 2.29.0 (incident.io's
Python SDK, whose sync job copies the public API schema unmodified). The fixture is its status-page
subset: every path whose path, operationId or tag concerns status pages, every ``x-webhooks`` entry
whose key does, the tags they use and the transitive closure of the schemas they reference. Nothing
is edited; one paragraph is prepended to ``info.description`` to say where the file came from.

    pip download --no-deps --no-binary :all: incident-io==2.29.0 -d /tmp/iio
    scripts/extract-openapi.py /tmp/iio/incident_io-2.29.0.tar.gz            # rewrite the fixture
    scripts/extract-openapi.py --check /tmp/iio/incident_io-2.29.0.tar.gz    # exit 1 if it differs

The upstream file's sha256 is checked before anything is written, so a different upstream (another
release, a tampered copy) is refused rather than silently extracted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

UPSTREAM_MEMBER = "incident_io-2.29.0/openapi.json"
UPSTREAM_SHA256 = "cf61e03a801e7c2574b792249917ee90d3d0151159c49a87011e16f2981c75a5"
FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "fixtures"
    / "openapi"
    / "incidentio-status-pages.openapi.json"
)
TOP_LEVEL_ORDER = [
    "openapi",
    "info",
    "servers",
    "security",
    "externalDocs",
    "tags",
    "paths",
    "components",
    "x-webhooks",
]

PROVENANCE = (
    "Status-page subset of the incident.io public API, extracted verbatim by script (transitive $ref closure, "
    "nothing hand-written except this paragraph).\n\n"
    "Upstream file: GitHub repository incident-io/sdk-python, path openapi.json, as released in sdk-python "
    "v2.29.0 (the copy shipped in the PyPI sdist incident-io==2.29.0; sha256 "
    f"{UPSTREAM_SHA256}). sdk-python's sync job fetches this file unmodified from "
    "https://api.incident.io/v1/openapiV3.json. The git commit behind tag v2.29.0 could not be resolved "
    "offline; the newest version of that file visible in the code index is at commit "
    "a8b5b232de1725b52f2d52f4904d73da20704595 (older and smaller).\n\n"
    "Cross-checked against older copies of the same upstream schema: incident-io/sdk-go openapi3.json at "
    "commit 6919772d5d91b6f5baf4ddf988a9b5c07c7cfb75 (schema as of 2026-08-21) and "
    "incident-io/terraform-provider-incident internal/apischema/public-schema-v3-including-secret-endpoints.json "
    "at commit a438c9e350fba07b3a228b94ec2d408cc91b2c5f. Those lack Status Page Components V2, ShowStatusPage, "
    "ShowStatusPageComponentAvailability, UpdateStatusPageMaintenance, DeleteStatusPageMaintenance, "
    "automate_maintenance_status, the per-operation error responses (ErrorResponse) and securitySchemes.\n\n"
    "Selection: every path whose path, operationId or tag concerns status pages (Status Pages V1, Status Pages "
    "V2, Status Page Components V2), plus x-webhooks entries whose key concerns status pages (one public "
    "webhook and the status-page audit-log events). The original info.description follows.\n\n---\n\n"
)

_STATUS_PAGE = re.compile(r"status[ _-]?page", re.IGNORECASE)
_REF = "#/components/schemas/"


def concerns_status_pages(text: str) -> bool:
    return bool(_STATUS_PAGE.search(text))


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref[len(_REF) :])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _tags(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "tags" and isinstance(value, list):
                found |= {t for t in value if isinstance(t, str)}
            else:
                found |= _tags(value)
    elif isinstance(node, list):
        for value in node:
            found |= _tags(value)
    return found


def _operation_selected(path: str, item: dict[str, Any]) -> bool:
    if concerns_status_pages(path):
        return True
    for op in item.values():
        if not isinstance(op, dict):
            continue
        if concerns_status_pages(str(op.get("operationId", ""))):
            return True
        if any(concerns_status_pages(t) for t in op.get("tags", [])):
            return True
    return False


def extract(upstream: dict[str, Any]) -> dict[str, Any]:
    paths = {p: item for p, item in upstream["paths"].items() if _operation_selected(p, item)}
    webhooks = {k: v for k, v in upstream["x-webhooks"].items() if concerns_status_pages(k)}
    all_schemas = upstream["components"]["schemas"]
    wanted = _refs(paths) | _refs(webhooks)
    todo = list(wanted)
    while todo:
        for ref in _refs(all_schemas[todo.pop()]):
            if ref not in wanted:
                wanted.add(ref)
                todo.append(ref)
    used_tags = _tags(paths) | _tags(webhooks)
    info = dict(upstream["info"])
    info["description"] = PROVENANCE + info["description"]
    subset: dict[str, Any] = {
        **upstream,
        "info": info,
        "tags": [t for t in upstream["tags"] if t["name"] in used_tags],
        "paths": paths,
        "components": {
            **upstream["components"],
            "schemas": {name: s for name, s in all_schemas.items() if name in wanted},
        },
        "x-webhooks": webhooks,
    }
    return {key: subset[key] for key in TOP_LEVEL_ORDER}


def render(subset: dict[str, Any]) -> str:
    return json.dumps(subset, indent=2, ensure_ascii=False) + "\n"


def read_upstream(source: Path) -> bytes:
    if source.name.endswith(".tar.gz"):
        with tarfile.open(source) as tar:
            member = tar.extractfile(UPSTREAM_MEMBER)
            if member is None:
                raise SystemExit(f"{source}: no {UPSTREAM_MEMBER}")
            return member.read()
    return source.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "source", type=Path, help="the incident-io 2.29.0 sdist (.tar.gz) or its openapi.json"
    )
    parser.add_argument("--check", action="store_true", help="compare with the fixture instead of writing it")
    args = parser.parse_args(argv)
    raw = read_upstream(args.source)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != UPSTREAM_SHA256:
        print(f"{args.source}: sha256 {digest}, expected {UPSTREAM_SHA256}", file=sys.stderr)
        return 2
    text = render(extract(json.loads(raw)))
    if args.check:
        same = FIXTURE.read_text(encoding="utf-8") == text
        print(f"{FIXTURE.name}: {'identical to' if same else 'DIFFERS from'} the extraction")
        return 0 if same else 1
    FIXTURE.write_text(text, encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(text)} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
