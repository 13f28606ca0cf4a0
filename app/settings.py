"""Service settings: environment variables prefixed ``RAG_`` (or a ``.env`` file). Read only at entry points."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingestion.embedder import EmbeddingBackend


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # storage
    data_dir: Path = Field(Path("data"), description="Where knowledge bases, model exports and caches live")
    model_cache_dir: Path | None = Field(
        None, description="Where ONNX exports of the embedder go (default data_dir/models)"
    )

    # embedding
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="A local sentence-transformers model directory, or all-MiniLM-L6-v2 (the packaged model)",
    )
    embedding_backend: EmbeddingBackend = Field(EmbeddingBackend.ONNX_INT8, description="torch, onnx or onnx-int8")
    embedding_batch_size: int = Field(64, ge=1, le=4096)

    # chunking
    chunk_size: int = Field(256, ge=16, le=8192, description="Chunk size in embedding-model tokens")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between consecutive chunks, in tokens")

    # retrieval
    candidates_per_retriever: int = Field(100, ge=1, le=2000, description="Dense and BM25 candidates per query")
    rrf_k: int = Field(60, ge=1)
    faiss_threads: int = Field(
        1, ge=1, le=256, description="OpenMP threads for FAISS; 1 is fastest for single queries (no wake-up cost)"
    )
    max_top_k: int = Field(100, ge=1, le=1000)
    max_query_chars: int = Field(2000, ge=16)
    rerank_depth: int = Field(0, ge=0, description="Rerank only the top N fused candidates (0: all of them)")
    rerank_threads: int = Field(1, ge=1, le=256, description="LightGBM threads when scoring candidates")
    reranker_model_dir: Path | None = Field(
        None,
        description="LTR model directory used when a knowledge base has none (default: the packaged one)",
    )

    # limits
    max_request_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Largest accepted request body")
    max_documents_per_request: int = Field(10_000, ge=1)

    # LLM (OpenAI-compatible /v1/chat/completions)
    llm_base_url: str = Field("http://127.0.0.1:8081/v1", description="OpenAI-compatible base URL (llama.cpp, vLLM)")
    llm_model: str = Field("smollm2-135m-instruct", description="Model name sent to the LLM server")
    llm_api_key: str | None = Field(None, description="Bearer token for the LLM server, if it needs one")
    llm_timeout_s: float = Field(60.0, gt=0, description="Total time allowed for one generation")
    llm_connect_timeout_s: float = Field(3.0, gt=0)
    llm_max_tokens: int = Field(256, ge=1, le=8192)
    llm_context_chars: int = Field(3000, ge=500, description="Character budget of the passages put in the prompt")
    llm_passages: int = Field(5, ge=1, le=50, description="How many top results are given to the LLM")

    # embedded LLM server started by `rag serve` (ignored when --no-llm or an external server is used)
    llm_server_port: int = Field(8081, ge=1, le=65535)
    llm_server_ctx: int = Field(8192, ge=512)

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def kbs_dir(self) -> Path:
        return self.data_dir / "kbs"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"
