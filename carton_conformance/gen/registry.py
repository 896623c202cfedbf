"""Case records and how they are written to disk (case.toml plus the files beside it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tomlw

ID_RE = re.compile(r"^(inspect|versionreq|infer|verify)(/[a-z0-9][a-z0-9._-]*)+$")
FIELD_ORDER = ["archive", "inputs", "runner", "key", "requirement", "version", "origin", "requires", "limits"]


@dataclass
class Case:
    id: str
    kind: str
    description: str
    requirements: list[str]
    expect: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def case_toml(self) -> str:
        doc: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "requirements": self.requirements,
        }
        for k in FIELD_ORDER:
            if k in self.fields:
                v = self.fields[k]
                doc[k] = tomlw.Inline(v) if isinstance(v, dict) else v
        assert set(self.fields) <= set(FIELD_ORDER), self.fields
        doc["expect"] = self.expect
        return tomlw.dumps(doc)


class Registry:
    def __init__(self) -> None:
        self.cases: list[Case] = []
        self._ids: set[str] = set()

    def add(self, case: Case) -> Case:
        assert ID_RE.match(case.id), case.id
        assert case.id not in self._ids, f"duplicate case id {case.id}"
        assert case.description and "\n" not in case.description, case.id
        assert case.requirements, case.id
        self._ids.add(case.id)
        self.cases.append(case)
        return case

    def write(self, root: Path) -> None:
        for case in self.cases:
            directory = root / case.id
            directory.mkdir(parents=True, exist_ok=False)
            (directory / "case.toml").write_text(case.case_toml(), encoding="utf-8", newline="\n")
            for name, data in case.files.items():
                (directory / name).write_bytes(data)


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")

__all__ = [
    "FIELD_ORDER",
    "ID_RE",
    "Case",
    "Registry",
    "json_bytes",
]
