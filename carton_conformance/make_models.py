"""Make the TorchScript models of the ``infer`` cases (run once; the .pt files are committed).

    .venv/bin/python -m carton_conformance.make_models

The models are inputs of the generator: ``python -m carton_conformance generate`` packs the committed
bytes, so the case archives regenerate byte for byte even though torch.jit.save output is not
stable across torch versions.  Every model follows the TorchScript runner's contract
(FMT-RUNNER-7): ``forward`` takes one dict and returns a dict.  Expected outputs are computed by the
generator with numpy from the formulas below, never by running these models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Union

import torch

HERE = Path(__file__).resolve().parent / "models"


class Double(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {"y": inputs["x"] * 2}


class Identity(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        for k, v in inputs.items():
            out[k] = v.clone()
        return out


class Affine(torch.nn.Module):
    """y = x @ W + b with fixed weights W[i, j] = (i - j) / 8 over 4 x 3, b = [0.5, -0.25, 1.0]."""

    def __init__(self) -> None:
        super().__init__()
        w = torch.tensor([[(i - j) / 8.0 for j in range(3)] for i in range(4)], dtype=torch.float32)
        self.weight = torch.nn.Parameter(w, requires_grad=False)
        self.bias = torch.nn.Parameter(torch.tensor([0.5, -0.25, 1.0]), requires_grad=False)

    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        x = inputs["x"]
        y = x @ self.weight + self.bias
        return {"y": y, "softmax": torch.softmax(y, dim=-1)}


class Reduce(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        a = inputs["a"]
        b = inputs["b"]
        return {
            "sum": a.sum(),
            "cumsum": torch.cumsum(a, dim=0),
            "scaled": b.to(torch.float64) * 0.5,
            "argmax": torch.argmax(b),
        }


class Strings(torch.nn.Module):
    def forward(self, inputs: Dict[str, Any]) -> Dict[str, Union[torch.Tensor, List[str], str]]:
        name = inputs["name"]
        words = inputs["words"]
        assert isinstance(name, str)
        assert isinstance(words, List[str])
        upper: List[str] = []
        for w in words:
            upper.append(w.upper())
        out: Dict[str, Union[torch.Tensor, List[str], str]] = {
            "greeting": "Hello, " + name + "!",
            "upper": upper,
            "joined": " ".join(words),
            "count": torch.tensor(len(words), dtype=torch.int64),
        }
        return out


MODELS = {"double": Double, "identity": Identity, "affine": Affine, "reduce": Reduce, "strings": Strings}


class ExportAffine(torch.nn.Module):
    """For the torch_export runner (FMT-EXPORT-1): keyword inputs x [batch, 4] and y [batch, 3];
    out = x @ W + b + y (W, b as in :class:`Affine`), z = 2x."""

    def __init__(self) -> None:
        super().__init__()
        self.affine = Affine()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"out": x @ self.affine.weight + self.affine.bias + y, "z": x * 2}


def export_affine() -> Any:
    """The ExportedProgram of :class:`ExportAffine` with a dynamic batch dimension."""
    batch = torch.export.Dim("batch")
    example = {"x": torch.zeros(2, 4), "y": torch.zeros(2, 3)}
    return torch.export.export(ExportAffine().eval(), (), example, dynamic_shapes={"x": {0: batch}, "y": {0: batch}})


#: torch.export programs (``.pt2``, written by torch.export.save)
EXPORTED = {"export_affine": export_affine}


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, cls in MODELS.items():
        module = torch.jit.script(cls().eval())
        path = HERE / f"{name}.pt"
        torch.jit.save(module, str(path))
        print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size} bytes")
    for name, make in EXPORTED.items():
        path = HERE / f"{name}.pt2"
        torch.export.save(make(), str(path))
        print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size} bytes")

__all__ = [
    "EXPORTED",
    "HERE",
    "MODELS",
    "Affine",
    "Double",
    "ExportAffine",
    "Identity",
    "Reduce",
    "Strings",
    "export_affine",
    "main",
]


if __name__ == "__main__":
    main()
