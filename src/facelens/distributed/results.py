"""Results of a large run as a file other tools read: Parquet (one row per face, exact float32 embeddings; an image
without faces or that failed is one row with ``face`` -1) or JSON lines (one :meth:`ImageResult.to_dict` per
image, as ``--json`` prints). Written from the driver as results arrive, in row groups, so memory stays flat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facelens.errors import FacelensError
from facelens.result import ImageResult

#: Rows per Parquet row group.
ROW_GROUP = 4096
SUFFIXES = (".parquet", ".jsonl")


class ResultWriter:
    """``with ResultWriter(path) as out: out.add(result)`` for each result."""

    def __init__(self, path: str | Path, with_embedding: bool = True) -> None:
        self.path = Path(path)
        self.with_embedding = with_embedding
        self.kind = self.path.suffix.lower()
        if self.kind not in SUFFIXES:
            raise FacelensError(f"{self.path}: results are written as {' or '.join(SUFFIXES)}")
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None
        self._text = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.kind == ".jsonl":
                self._text = self.path.open("w")
        except OSError as exc:
            raise FacelensError(f"{self.path}: cannot write: {exc}") from None

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, result: ImageResult) -> None:
        if self._text is not None:
            self._text.write(json.dumps(result.to_dict(with_embedding=self.with_embedding), default=_plain) + "\n")
            return
        base = {"path": result.source, "width": int(result.width), "height": int(result.height),
                "error": result.error}
        faces = result.faces
        records = faces.to_list(False) if len(faces) else []
        if not records:
            self._rows.append({**base, "face": -1, "box": None, "score": None, "embedding": None, "name": None,
                               "identity_score": None, "model_id": None, "face_json": None})
        for i, record in enumerate(records):
            identity = record.get("identity") or {}
            embedding = faces.embedding[i].tolist() if self.with_embedding and faces.embedding is not None else None
            self._rows.append({**base, "face": i, "box": [float(v) for v in faces.box[i]],
                               "score": float(faces.score[i]), "embedding": embedding, "name": identity.get("name"),
                               "identity_score": identity.get("score"), "model_id": faces.model_id,
                               "face_json": json.dumps(record, default=_plain)})
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA())
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)
        self._rows = []

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
            self._text = None
            return
        self._flush()
        if self._writer is None:  # no result at all: an empty file with the schema
            import pyarrow.parquet as pq

            pq.write_table(SCHEMA().empty_table(), self.path)
        else:
            self._writer.close()
        self._writer = None


def SCHEMA() -> Any:  # noqa: N802  (a constant built on first use: pyarrow is imported only when writing Parquet)
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("width", pa.int32()), ("height", pa.int32()), ("error", pa.string()),
        ("face", pa.int32()), ("box", pa.list_(pa.float32())), ("score", pa.float32()),
        ("embedding", pa.list_(pa.float32())), ("name", pa.string()), ("identity_score", pa.float32()),
        ("model_id", pa.string()), ("face_json", pa.string()),
    ])


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["ResultWriter"]
