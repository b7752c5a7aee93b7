"""Results files: Parquet keeps one row per face with the exact float32 embedding; JSON lines match --json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelens.distributed.results import ResultWriter
from facelens.engine import FaceAnalyzer
from facelens.errors import FacelensError
from helpers import need_data


def test_parquet_and_jsonl_hold_every_face_and_failure(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed: pip install 'facelens[parquet]'")
    examples = need_data("identity", "face_recognition", "examples")
    (tmp_path / "text.jpg").write_text("not an image")
    sources = [str(examples / "obama.jpg"), str(tmp_path / "text.jpg"), str(examples / "two_people.jpg")]
    results = list(FaceAnalyzer(workers=1).run(sources))
    with ResultWriter(tmp_path / "out.parquet") as parquet, ResultWriter(tmp_path / "out.jsonl") as lines:
        for result in results:
            parquet.add(result)
            lines.add(result)
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    faces = sum(len(r.faces) for r in results)
    assert faces >= 3 and len(table) == faces + 1  # the unreadable image is one row with face -1
    failed = [row for row in table if row["error"] is not None]
    assert [row["path"] for row in failed] == [sources[1]] and failed[0]["face"] == -1
    rows = [row for row in table if row["face"] >= 0]
    stored = np.array([row["embedding"] for row in rows], np.float32)
    assert np.array_equal(stored, np.concatenate([r.faces.embedding for r in results if len(r.faces)]))  # exact
    assert [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()] == \
        [json.loads(json.dumps(r.to_dict(with_embedding=True))) for r in results]


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(FacelensError, match="parquet"):
        ResultWriter(tmp_path / "out.csv")
