#!/usr/bin/env python3
"""Print pyproject.toml's requirements, one a line, so an image installs them before the source.

Used by the Dockerfiles: the dependency layer is then rebuilt only when pyproject.toml changes.

  pyproject-deps.py pyproject.toml --extra train --extra torch    # runtime deps + those extras
                                      # (an extra naming quantrain[s3] pulls in that extra)
  pyproject-deps.py pyproject.toml --extra torch --only torch     # just the torch pin(s)
  pyproject-deps.py pyproject.toml --swap xgboost-cpu=xgboost-cu12  # same specifier, other dist

``--only NAME`` keeps the requirements of that distribution, ``--skip NAME`` drops them (both
repeatable); ``--swap OLD=NEW`` renames a distribution and keeps its version specifier.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise SystemExit(f"pyproject-deps: cannot read a distribution name in {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject")
    parser.add_argument("--extra", action="append", default=[], help="optional-dependency group")
    parser.add_argument("--only", action="append", default=[], help="keep only this distribution")
    parser.add_argument("--skip", action="append", default=[], help="drop this distribution")
    parser.add_argument("--swap", action="append", default=[], help="OLD=NEW distribution name")
    args = parser.parse_args(argv)

    with open(args.pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    requirements = list(project.get("dependencies", []))
    groups = project.get("optional-dependencies", {})
    own = _name(project["name"])
    seen: set[str] = set()

    def add(extra: str) -> None:
        """An extra's requirements; ``quantrain[s3]`` inside one expands to that extra."""
        if extra in seen:
            return
        if extra not in groups:
            raise SystemExit(f"pyproject-deps: no extra {extra!r} (have: {', '.join(groups)})")
        seen.add(extra)
        for requirement in groups[extra]:
            if _name(requirement) == own:
                inner = re.search(r"\[([^\]]*)\]", requirement)
                for name in (inner.group(1).split(",") if inner else []):
                    add(name.strip())
            else:
                requirements.append(requirement)

    for extra in args.extra:
        add(extra)

    swaps = dict(item.split("=", 1) for item in args.swap)
    only = {_name(n) for n in args.only}
    skip = {_name(n) for n in args.skip}
    for old in swaps:
        if not any(_name(r) == _name(old) for r in requirements):
            raise SystemExit(f"pyproject-deps: --swap {old}: not among the requirements")
    for requirement in requirements:
        name = _name(requirement)
        if (only and name not in only) or name in skip:
            continue
        for old, new in swaps.items():
            if name == _name(old):
                requirement = new + requirement[_NAME.match(requirement).end() :]  # type: ignore[union-attr]
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
