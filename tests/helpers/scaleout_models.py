"""A small TorchScript MLP packed as a carton, for the scale-out tests, examples and bench.

Inputs ``x`` (float32, [batch, FEATURES]); outputs ``y`` (float32, [batch, CLASSES]: the logits)
and ``label`` (int64, [batch]: their argmax).  Weights come from a fixed seed, so
:func:`reference` (the same module run by torch directly) gives the expected outputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np

FEATURES = 64
CLASSES = 4
HIDDEN = 64


def _module() -> Any:
    import torch

    class MLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(FEATURES, HIDDEN)
            self.out = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
            logits = self.out(torch.relu(self.hidden(inputs["x"])))
            return {"y": logits, "label": torch.argmax(logits, dim=1)}

    torch.manual_seed(1234)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(MLP().eval())


def pack_mlp(output: Path) -> Path:
    """The MLP packed at ``output`` (a .carton)."""
    import carton_format as cf
    import carton_runtime.sync as cs

    return Path(
        cs.pack(
            _module(), "torchscript", "=2.13", model_name="mlp", output_path=output, overwrite=True,
            inputs=[cf.TensorSpec("x", "float32", ["batch", FEATURES])],
            outputs=[cf.TensorSpec("y", "float32", ["batch", CLASSES]), cf.TensorSpec("label", "int64", ["batch"])],
        )
    )


def features(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, FEATURES), dtype=np.float32)


def reference(x: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs torch gives for ``x``, without Carton."""
    import torch

    with torch.no_grad():
        out = _module()({"x": torch.from_numpy(x)})
    return {k: v.numpy() for k, v in out.items()}
