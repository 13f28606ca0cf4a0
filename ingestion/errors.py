"""Exception hierarchy of the service.

Library code raises these; ``app/errors.py`` maps each class to one HTTP status in a single table.

    RagError                      500  base class
    ├── InvalidInputError         422  a request that names something impossible (empty text, bad option)
    ├── KnowledgeBaseNotFound     404  the named knowledge base does not exist
    ├── DocumentNotFound          404  the named document does not exist in the knowledge base
    ├── UnsupportedFileType       415  an uploaded file whose type no loader handles
    ├── PayloadTooLarge           413  a request body or upload over the configured limit
    ├── ModelSchemaMismatch       409  a reranker model whose feature schema differs from the code's
    ├── GenerationError           502  the LLM server answered with an error or unparsable output
    │   └── GenerationTimeout     504  the LLM server did not answer in time / was unreachable
    └── StorageError              500  the on-disk state could not be read or written
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: every error the service raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(RagError):
    code = "invalid_input"


class KnowledgeBaseNotFound(RagError):
    code = "kb_not_found"


class DocumentNotFound(RagError):
    code = "document_not_found"


class UnsupportedFileType(RagError):
    code = "unsupported_file_type"


class PayloadTooLarge(RagError):
    code = "payload_too_large"


class ModelSchemaMismatch(RagError):
    code = "model_schema_mismatch"


class GenerationError(RagError):
    code = "generation_failed"


class GenerationTimeout(GenerationError):
    code = "generation_timeout"


class StorageError(RagError):
    code = "storage_error"
