# CPU image of the RAG service. The same image runs the API (`rag serve --no-llm`) and the embedded
# llama.cpp server (`rag llm-server`); docker-compose.yml wires them together.
FROM python:3.11-slim AS base

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    RAG_DATA_DIR=/data RAG_HOST=0.0.0.0 RAG_PORT=8000

# llama-cpp-python compiles llama.cpp from source
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch first, pinned, from the CPU wheel index: an unpinned torch pulls a multi-GB CUDA build
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY app ./app
COPY ingestion ./ingestion
COPY retrieval ./retrieval
COPY generation ./generation
RUN pip install .

# Export the ONNX int8 embedder at build time so the first start is fast (kept under /opt/models)
ENV RAG_MODEL_CACHE_DIR=/opt/models
RUN python -c "from ingestion.embedder import SentenceTransformerEmbedder as E; E(cache_dir='/opt/models')"

VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=30 \
    CMD curl -fsS http://127.0.0.1:${RAG_PORT}/ready || exit 1
CMD ["rag", "serve", "--no-llm"]
