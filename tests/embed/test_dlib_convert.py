"""The dlib → ONNX converter: refuses damaged files with a typed error, caches its output and rebuilds stale caches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelens.embed import dlib_convert
from facelens.embed.dlib_convert import DlibFormatError, converted_model, read_dlib_resnet
from facelens.errors import FacelensError


@pytest.fixture(scope="module")
def dat_path():
    import facelens.models.catalog  # noqa: F401
    from facelens.models.registry import model_path

    return model_path("dlib_resnet_v1")


@pytest.fixture(scope="module")
def dat_bytes(dat_path):
    return dat_path.read_bytes()


def test_reads_the_whole_network(dat_bytes):
    net = read_dlib_resnet(dat_bytes)
    assert net.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    convs = [net.params[i]["weight"].shape for i, layer in enumerate(net.layers) if layer.kind == "con"]
    assert convs[0] == (32, 3, 7, 7) and convs[-1] == (256, 256, 3, 3) and len(convs) == 29
    fc = net.params[len(net.layers) - 1]["weight"]
    assert fc.shape == (256, 128) and np.isfinite(fc).all()


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.3, 0.999])
def test_truncated_file_is_a_typed_error(dat_bytes, keep):
    with pytest.raises(DlibFormatError, match="damaged or truncated"):
        read_dlib_resnet(dat_bytes[: int(len(dat_bytes) * keep)], "cut.dat")


def test_damaged_file_is_a_typed_error(dat_bytes):
    damaged = dat_bytes.replace(b"con_4", b"cxn_4", 1)  # the first convolution's layer name
    with pytest.raises(DlibFormatError, match="cxn_4"):
        read_dlib_resnet(damaged)
    with pytest.raises(DlibFormatError, match="unexpected bytes"):
        read_dlib_resnet(dat_bytes + b"\x00")
    assert issubclass(DlibFormatError, FacelensError)


def test_damaged_file_leaves_no_model_in_the_cache(dat_bytes, tmp_path):
    source = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    source.write_bytes(dat_bytes[: len(dat_bytes) // 2])
    with pytest.raises(DlibFormatError):
        converted_model(source, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.onnx"))


def test_cache_is_built_once_and_rebuilt_when_stale(dat_path, tmp_path, monkeypatch):
    from facelens.models.registry import sha256_of

    cache = tmp_path / "cache"
    first = converted_model(dat_path, cache)
    record_path = first.with_name(first.name + ".json")
    record = json.loads(record_path.read_text())
    assert record["source_sha256"] == sha256_of(dat_path)
    assert record["converter_version"] == dlib_convert.CONVERTER_VERSION
    assert record["onnx_sha256"] == sha256_of(first)
    built = first.stat().st_mtime_ns

    assert converted_model(dat_path, cache) == first and first.stat().st_mtime_ns == built  # reused

    with open(first, "r+b") as handle:  # damage the cached model: its own sha no longer matches the record
        handle.seek(first.stat().st_size // 2)
        handle.write(b"\xff\xff\xff\xff")
    assert sha256_of(first) != record["onnx_sha256"]
    converted_model(dat_path, cache)
    assert sha256_of(first) == record["onnx_sha256"]  # rebuilt, and the conversion is deterministic

    monkeypatch.setattr(dlib_convert, "CONVERTER_VERSION", dlib_convert.CONVERTER_VERSION + 1)
    converted_model(dat_path, cache)
    assert json.loads(record_path.read_text())["converter_version"] == dlib_convert.CONVERTER_VERSION

    converted_model(dat_path, cache, source_sha256="0" * 64)  # another source file: converted again
    assert json.loads(record_path.read_text())["source_sha256"] == "0" * 64
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_float_decoder_reads_dlibs_own_float_serialisation():
    """dlib writes a column vector of doubles as nr, nc (negated) then one (mantissa, exponent) pair per value;
    the vectorised decoder reads those pairs exactly as dlib wrote them."""
    dlib = pytest.importorskip("dlib")
    rng = np.random.default_rng(0)
    values = rng.normal(size=150_000) * 10.0 ** rng.integers(-20, 20, 150_000)
    values[:5] = [0.0, -0.0, 1.0, np.inf, -np.inf]
    raw = dlib.vector(values.tolist()).__getstate__()[0]
    buf = np.frombuffer(raw, np.uint8)
    reader = dlib_convert.DlibReader(raw)
    assert (reader.int(), reader.int()) == (-len(values), -1)
    decoded, end = dlib_convert._decode_float_details(buf, reader.pos, len(values))
    assert end == len(raw)
    np.testing.assert_array_equal(decoded, values.astype(np.float32))
    with pytest.raises(DlibFormatError):
        dlib_convert._decode_float_details(buf[: len(raw) - 3], reader.pos, len(values))
