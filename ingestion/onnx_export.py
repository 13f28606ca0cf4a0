"""One-time export of a local sentence-transformers model to ONNX (fp32 or dynamic int8), cached on disk.

The export directory holds ``model.onnx``, ``tokenizer.json`` and ``embedder.json`` (pooling, normalize,
max_seq_length, dim). It is written into a temporary sibling directory and renamed into place, so a crash
never leaves a half-written export that would be taken for a finished one.

The model is traced with ``torch.onnx.export`` and quantized with ``onnxruntime.quantization``: optimum's
ONNX exporter (which sentence-transformers' ``backend="onnx"`` relies on) needs transformers<4.58, while
sentence-transformers 6 needs transformers>=5, so it cannot be installed beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingestion.errors import InvalidInputError, StorageError

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "embedder.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """What the ONNX runner must do around the exported transformer."""

    pooling: str  # "mean" or "cls"
    normalize: bool
    max_seq_length: int
    dim: int
    inputs: tuple[str, ...]


def int8_preset() -> str:
    """The int8 flavour that suits this CPU: VNNI CPUs take full-range weights, others need reduce_range."""
    if platform.machine().lower() in {"arm64", "aarch64"}:
        return "arm64"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = ""
    return "vnni" if ("avx512_vnni" in cpuinfo or "avx_vnni" in cpuinfo) else "avx2"


def model_fingerprint(path: Path) -> str:
    """Short hash of a model directory's location and file sizes (changes when the model is replaced)."""
    digest = hashlib.sha256(str(path).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}:{file.stat().st_size};".encode())
    return digest.hexdigest()[:12]


def read_config(directory: Path) -> ExportConfig:
    raw = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    raw["inputs"] = tuple(raw["inputs"])
    return ExportConfig(**raw)


def ensure_export(source: Path, name: str, cache_dir: Path, quantize: bool) -> tuple[Path, bool]:
    """The export directory of model ``source`` under ``cache_dir`` and whether this call had to create it."""
    tag = f"int8-{int8_preset()}" if quantize else "fp32"
    key = f"{name.replace('/', '_')}-{model_fingerprint(source)}-onnx-{tag}"
    target = cache_dir / "embedding-models" / key
    if (target / CONFIG_FILE).is_file():
        return target, False
    tmp = target.parent / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _remove_dead_exports(target.parent, key)
        tmp.mkdir(parents=True)
        _export(source, tmp, quantize)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / CONFIG_FILE).is_file():  # unless a concurrent exporter won the race
                raise
    except OSError as exc:
        raise StorageError(f"could not export the embedding model to {target}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, True


def _remove_dead_exports(parent: Path, key: str) -> None:
    """Delete temporary directories left by exporters that were killed (their process is gone)."""
    if not parent.is_dir():
        return
    for leftover in parent.glob(f".{key}.tmp-*"):
        pid = leftover.name.rsplit(".tmp-", 1)[1].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(leftover, ignore_errors=True)
        except PermissionError:
            pass  # alive, owned by another user


def pipeline(model: Any) -> tuple[str, bool]:
    """(pooling, normalize) of a Transformer -> Pooling [-> Normalize] model; anything else is refused."""
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    modules = list(model)
    ok = 2 <= len(modules) <= 3 and isinstance(modules[0], Transformer) and isinstance(modules[1], Pooling)
    mode = modules[1].pooling_mode if ok else None
    mode = mode[0] if isinstance(mode, tuple | list) and len(mode) == 1 else mode
    if not ok or mode not in ("mean", "cls") or (len(modules) == 3 and not isinstance(modules[2], Normalize)):
        raise InvalidInputError(
            "the ONNX backends support Transformer -> mean/cls Pooling [-> Normalize] models only;"
            " use the torch backend for this model"
        )
    return str(mode), len(modules) == 3


def _export(source: Path, out: Path, quantize: bool) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(
        str(source), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    )
    pooling, normalize = pipeline(st)
    tokenizer = st.tokenizer
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    sample = tokenizer(["an example input", "x"], padding=True, return_tensors="pt")
    inputs = tuple(name for name in _INPUTS if name in sample)
    transformer: Any = st[0].auto_model
    transformer.eval()

    class _Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(inputs, args, strict=True)), return_dict=False)[0]

    fp32 = out / ("model-fp32.onnx" if quantize else MODEL_FILE)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*inputs, "last_hidden_state")}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(
            _Wrapper(),
            tuple(sample[name] for name in inputs),
            str(fp32),
            input_names=list(inputs),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            fp32,
            out / MODEL_FILE,
            per_channel=True,
            reduce_range=int8_preset() == "avx2",
            weight_type=QuantType.QInt8,
        )
        fp32.unlink()
    max_len, dim = st.max_seq_length, st.get_embedding_dimension()
    if max_len is None or dim is None:
        raise InvalidInputError("the model declares no max_seq_length or embedding dimension")
    config = ExportConfig(pooling, normalize, int(max_len), int(dim), inputs)
    (out / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2), encoding="utf-8")
