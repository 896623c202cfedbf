"""A BERT-base-sized TorchScript model built from code (nothing downloaded), for the benchmarks.

Token embeddings 30522x768, 512 positions, 12 encoder layers 768/3072 and a pooler: BERT-base's
parameter count, 438 MB saved with ``torch.jit.save``.
"""

from __future__ import annotations

import warnings
from typing import Any


def build_bert_like() -> Any:
    """The scripted module (``forward({"input_ids": int64 [batch, seq]}) -> {"pooled": ...}``)."""
    import torch

    class BertLike(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = torch.nn.Embedding(30522, 768)
            self.pos = torch.nn.Embedding(512, 768)
            self.typ = torch.nn.Embedding(2, 768)
            self.norm = torch.nn.LayerNorm(768)
            self.layers = torch.nn.ModuleList(
                [torch.nn.TransformerEncoderLayer(768, 12, 3072, batch_first=True) for _ in range(12)]
            )
            self.pool = torch.nn.Linear(768, 768)

        def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            ids = inputs["input_ids"]
            pos = torch.arange(ids.shape[1]).unsqueeze(0)
            h = self.norm(self.tok(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids)))
            for layer in self.layers:
                h = layer(h)
            return {"pooled": torch.tanh(self.pool(h[:, 0]))}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(BertLike().eval())
