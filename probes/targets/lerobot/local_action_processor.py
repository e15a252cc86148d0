"""A stand-in for the FAST action tokenizer pi0_fast loads with `trust_remote_code`.

The tool copies this file into the local action-tokenizer folder it writes
(`local_vlm.fast_tokenizer_folders`), and `AutoProcessor.from_pretrained(folder,
trust_remote_code=True)` imports it from there: the hub's processor is custom code too, so this
file has the same interface (`bpe_tokenizer`, `scale`, `min_token`, `vocab_size`, calling it on
an action chunk, `decode`). Its tokenizer is one token per quantised DCT coefficient, without the
hub's learned merges: the ids mean the same thing, the sequences are longer.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct, idct
from transformers import PreTrainedTokenizerFast
from transformers.processing_utils import ProcessorMixin


class LocalActionProcessor(ProcessorMixin):
    """Actions to token ids and back: a DCT over time, quantised by `scale`, one char per value."""

    def __init__(
        self,
        bpe_tokenizer: PreTrainedTokenizerFast,
        scale: float = 10.0,
        vocab_size: int = 1024,
        min_token: int = -512,
    ) -> None:
        self.scale = scale
        self.vocab_size = vocab_size
        self.min_token = min_token
        super().__init__(bpe_tokenizer)

    def __call__(self, action_chunk: np.ndarray) -> list[list[int]]:
        """Token ids of each chunk of a [batch, time, action_dim] (or [time, action_dim]) array."""
        chunks = np.asarray(action_chunk, dtype=np.float64)
        if chunks.ndim == 2:
            chunks = chunks[None]
        coefficients = np.around(dct(chunks, axis=1, norm="ortho") * self.scale).astype(int)
        top = self.vocab_size - 1
        return [
            self.bpe_tokenizer("".join(map(chr, np.clip(c.ravel() - self.min_token, 0, top))))[
                "input_ids"
            ]
            for c in coefficients
        ]

    def decode(self, tokens: list[list[int]], *, time_horizon: int, action_dim: int) -> np.ndarray:
        """The action chunks the token ids stand for, [batch, time_horizon, action_dim]."""
        chunks = []
        for ids in tokens:
            text = self.bpe_tokenizer.decode(ids)
            values = np.array([ord(ch) for ch in text], dtype=np.float64) + self.min_token
            size = time_horizon * action_dim
            values = np.pad(values[:size], (0, max(0, size - len(values))))
            values = values.reshape(time_horizon, action_dim)
            chunks.append(idct(values / self.scale, axis=0, norm="ortho"))
        return np.stack(chunks)
