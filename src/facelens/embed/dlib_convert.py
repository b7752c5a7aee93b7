"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as an ONNX graph.

dlib saves a ``dnn`` network with its own serialiser and no description of the architecture: the C++ type
(``anet_type`` in dlib's ``tools/python/src/face_recognition.cpp``) *is* the description. So we spell that type out
here (:func:`anet_layers`), read the file the way dlib's ``deserialize`` walks that type — every layer's version
number from the outside in, then the input layer, then each layer's details from the inside out — check that every
layer found is the one the type expects, and write the same computation as ONNX operators.

Format, from dlib's ``serialize.h``, ``float_details.h``, ``dnn/core.h``, ``dnn/layers.h``, ``dnn/input.h``,
``dnn/tensor.h``:

- integers: a control byte (bit 7 = negative, low 4 bits = byte count) then that many bytes, little endian;
- floats: two such integers, mantissa then exponent (value = mantissa · 2^exponent; exponents 32000–32002 are
  ±inf and NaN); bools are the characters ``'0'``/``'1'``; strings are a length then bytes;
- tensors: version, num_samples, k, nr, nc, then the values: version 2 as raw little-endian float32, version 1
  as one (mantissa, exponent) pair each (decoded here all at once with numpy, see :func:`_decode_float_details`).

The ONNX graph takes the 150×150 RGB chips as uint8 NHWC (batch dimension dynamic) and does dlib's input
scaling itself ((pixel − mean) / 256 with the means stored in the file), so the embedder hands it stacked chips.
Zero-padded residual sums (dlib's ``add_prev`` adds tensors of different channel counts and sizes as if the
smaller were padded with zeros at the end) become Pad + Add.

Converted graphs are cached (:func:`converted_model`) next to a record of the source's sha256 and
:data:`CONVERTER_VERSION`, and rebuilt when either, or the cached file's own sha256, no longer matches.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facelens.errors import ModelIntegrityError

log = logging.getLogger(__name__)

#: Bumped whenever the graph this module writes changes, so caches from an older converter are rebuilt.
CONVERTER_VERSION = 1
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
CHIP_SIZE = 150


class DlibFormatError(ModelIntegrityError):
    """The file is not the dlib network we expect (damaged, truncated, or another architecture)."""


# ----------------------------------------------------------------------------------------------------------
# the architecture: anet_type of dlib's face_recognition.cpp, as a flat list of layers from the input upwards


@dataclass(frozen=True)
class Layer:
    """One node of dlib's network type. ``kind`` is the dlib layer (con, affine, relu, max_pool, avg_pool,
    add_prev, fc) or a wiring node (tag, skip) that has no details of its own in the file."""

    kind: str
    filters: int = 0  # con / fc outputs
    size: int = 0  # con / pool window (0 = the whole input, for avg_pool_everything)
    stride: int = 1
    tag: int = 0  # tag id for tag / skip / add_prev

    @property
    def padding(self) -> int:
        # dlib's template default: no padding when strided, else half the window
        return 0 if self.stride != 1 else self.size // 2


def _block(n: int, stride: int) -> list[Layer]:
    """block<N, affine, stride> = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, SUBNET>>>>>."""
    return [Layer("con", n, 3, stride), Layer("affine"), Layer("relu"), Layer("con", n, 3, 1), Layer("affine")]


def _ares(n: int) -> list[Layer]:
    """relu<add_prev1<block<N, affine, 1, tag1<SUBNET>>>>."""
    return [Layer("tag", tag=1), *_block(n, 1), Layer("add_prev", tag=1), Layer("relu")]


def _ares_down(n: int) -> list[Layer]:
    """relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N, affine, 2, tag1<SUBNET>>>>>>>."""
    return [
        Layer("tag", tag=1), *_block(n, 2), Layer("tag", tag=2), Layer("skip", tag=1),
        Layer("avg_pool", size=2, stride=2), Layer("add_prev", tag=2), Layer("relu"),
    ]


def anet_layers() -> list[Layer]:
    """``anet_type`` from the input upwards (``input_rgb_image_sized<150>`` excluded, ``loss_metric`` excluded)."""
    layers = [Layer("con", 32, 7, 2), Layer("affine"), Layer("relu"), Layer("max_pool", size=3, stride=2)]
    layers += _ares(32) * 3  # alevel4
    layers += _ares_down(64) + _ares(64) * 3  # alevel3
    layers += _ares_down(128) + _ares(128) * 2  # alevel2
    layers += _ares_down(256) + _ares(256) * 2  # alevel1
    layers += _ares_down(256)  # alevel0
    layers += [Layer("avg_pool", size=0, stride=1), Layer("fc", 128)]
    return layers


# ----------------------------------------------------------------------------------------------------------
# reading dlib's serialisation


def _decode_float_details(buf: np.ndarray, start: int, count: int) -> tuple[np.ndarray, int]:
    """``count`` floats serialised one after another as dlib (mantissa, exponent) integer pairs, from ``start``.

    Each integer's length is in its own control byte, so where the i-th float starts depends on every float before
    it. Instead of walking them one by one in Python, for every byte offset p of a window we compute where a float
    starting at p would end (``jump[p]``) and find the starts by pointer doubling: the starts of the first 2m floats
    are those of the first m plus ``jump^m`` of them, and ``jump^2m = jump^m ∘ jump^m`` — log2(m) numpy gathers
    per window instead of m Python steps. Returns the values (float32) and the offset after the last one.
    """
    values = []
    while count > 0:
        chunk = min(count, _FLOATS_PER_WINDOW)
        decoded, start = _decode_window(buf, start, chunk)
        values.append(decoded)
        count -= chunk
    return (np.concatenate(values) if values else np.zeros(0, np.float32)), start


_FLOATS_PER_WINDOW = 1 << 16
_MAX_FLOAT_BYTES = 12  # mantissa: control byte + 8; exponent (int16): control byte + 2


def _decode_window(buf: np.ndarray, start: int, count: int) -> tuple[np.ndarray, int]:
    region = buf[start : start + count * _MAX_FLOAT_BYTES].astype(np.int32)
    n = len(region)
    if n == 0:
        raise DlibFormatError("a float tensor runs past the end of the file (truncated?)")
    following = np.minimum(np.arange(n, dtype=np.int32) + 1 + (region & 0x0F), n)  # start of the next integer
    following = np.append(following, np.int32(n))  # offset n: off the window, maps to itself
    jump = following[following]  # start of the next float
    starts = np.zeros(1, np.int32)
    power = jump
    while len(starts) < count:
        starts = np.concatenate([starts, power[starts]])
        if len(starts) < count:
            power = power[power]
    starts = starts[:count]
    exponents_at = following[starts]
    if starts[-1] >= n or exponents_at[-1] >= n:
        raise DlibFormatError("a float tensor runs past the end of the file (truncated?)")
    mantissa = _decode_ints(region, starts, 8)
    exponent = _decode_ints(region, exponents_at, 2)
    end = int(exponents_at[-1]) + 1 + int(region[exponents_at[-1]] & 0x0F)
    special = exponent >= 32000
    if (exponent > 32002).any():
        raise DlibFormatError("damaged float in a tensor")
    values = np.ldexp(mantissa.astype(np.float64), np.where(special, 0, exponent).astype(np.int32))
    values[exponent == 32000] = np.inf
    values[exponent == 32001] = -np.inf
    values[exponent == 32002] = np.nan
    return values.astype(np.float32), start + end


def _decode_ints(region: np.ndarray, at: np.ndarray, max_size: int) -> np.ndarray:
    """dlib integers of at most ``max_size`` bytes whose control bytes sit at offsets ``at`` of ``region``."""
    n = len(region)
    control = region[at]
    size = control & 0x0F
    if (control & 0x70).any() or (size > max_size).any() or (at + size >= n).any():
        raise DlibFormatError("damaged integer in a float tensor (damaged or truncated file?)")
    value = np.zeros(len(at), np.int64)
    for i in range(max_size):
        present = size > i
        if not present.any():
            break
        byte = region[np.minimum(at + 1 + i, n - 1)].astype(np.int64)
        value |= np.where(present, byte << (8 * i), 0)
    return np.where(control & 0x80, -value, value)


class DlibReader:
    """Sequential reader of dlib's serialised values; every failure is a :class:`DlibFormatError`."""

    def __init__(self, data: bytes, name: str = "model") -> None:
        self.data = data
        self.buf = np.frombuffer(data, np.uint8)
        self.pos = 0
        self.name = name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(
            f"{self.name} is not a readable dlib face-recognition network: {what} at byte {self.pos} of "
            f"{len(self.data)} (damaged or truncated file? delete it so it is fetched again)"
        )

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise self.fail("unexpected end of file")

    def int(self) -> int:
        self._need(1)
        control = self.data[self.pos]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        self._need(1 + size)
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float(self) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail("float in dlib's old text format")  # never written by a dlib with dnn
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        self._need(1)
        char = self.data[self.pos]
        if char not in (0x30, 0x31):
            raise self.fail(f"expected a bool, found byte 0x{char:02x}")
        self.pos += 1
        return char == 0x31

    def string(self, limit: int = 64) -> str:
        size = self.int()
        if not 0 <= size <= limit:
            raise self.fail(f"implausible string length {size}")
        self._need(size)
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("non-text layer name") from None

    def expect(self, *names: str) -> str:
        found = self.string()
        if found not in names:
            raise self.fail(f"expected {' or '.join(names)!r}, found {found!r}")
        return found

    def shape(self) -> tuple[int, int, int, int]:
        dims = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in dims) or np.prod(dims, dtype=np.float64) > 1e9:
            raise self.fail(f"implausible tensor shape {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        """A resizable_tensor as float32 [num_samples, k, nr, nc]."""
        version = self.int()
        if version not in (1, 2):
            raise self.fail(f"unknown tensor version {version}")
        dims = self.shape()
        count = int(np.prod(dims))
        if version == 2:
            self._need(4 * count)
            values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float32)
            self.pos += 4 * count
        else:
            try:
                values, self.pos = _decode_float_details(self.buf, self.pos, count)
            except DlibFormatError as exc:
                raise self.fail(str(exc)) from None
        return values.reshape(dims)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise self.fail("unknown alias_tensor version")
        return self.shape()


# ----------------------------------------------------------------------------------------------------------
# the network's parameters


@dataclass
class DlibNet:
    """What the converter needs from the file: input means, and each computational layer's parameters."""

    means: tuple[float, float, float]
    layers: list[Layer]
    params: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # index in ``layers`` → arrays


def _read_add_layer_state(reader: DlibReader, version: int) -> None:
    """What add_layer saves after a layer's details: training flags and buffers (empty in a released model)."""
    reader.bool()  # this_layer_setup_called
    reader.bool()  # gradient_input_is_stale
    if version >= 2 or reader.data[reader.pos : reader.pos + 1] in (b"0", b"1"):
        reader.bool()  # get_output_and_gradient_input_disabled (absent from the oldest version 1)
    reader.tensor()  # x_grad
    reader.tensor()  # cached_output
    if version >= 2:
        reader.tensor()  # params_grad


def _read_pool(reader: DlibReader, layer: Layer, names: tuple[str, ...]) -> None:
    reader.expect(*names)
    nr, nc, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(6))
    if (nr, nc, stride_y, stride_x, pad_y, pad_x) != (layer.size, layer.size, layer.stride, layer.stride,
                                                    layer.padding, layer.padding):
        raise reader.fail(f"{layer.kind} window {nr}x{nc}/{stride_y}x{stride_x} pad {pad_y},{pad_x} is not the expected one")


def _read_con(reader: DlibReader, layer: Layer) -> dict[str, np.ndarray]:
    version = reader.expect("con_4", "con_5")
    params = reader.tensor().reshape(-1)
    num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(7))
    filters = reader.alias_tensor()
    biases = reader.alias_tensor()
    for _ in range(4):
        reader.float()  # learning-rate and weight-decay multipliers
    use_bias = reader.bool() if version == "con_5" else True
    expected = (layer.filters, layer.size, layer.size, layer.stride, layer.stride, layer.padding, layer.padding)
    if (num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x) != expected:
        raise reader.fail(f"convolution {num_filters}x{nr}x{nc}/{stride_y} pad {pad_y} is not the expected {expected}")
    if filters[0] != num_filters or filters[2:] != (nr, nc):
        raise reader.fail(f"convolution filter shape {filters} does not match its header")
    weight_count = int(np.prod(filters))
    bias_count = num_filters if use_bias else 0
    if params.size != weight_count + bias_count:
        raise reader.fail(f"convolution holds {params.size} values, expected {weight_count + bias_count}")
    out = {"weight": params[:weight_count].reshape(filters)}  # [out, in, rows, cols], as ONNX Conv wants
    out["bias"] = params[weight_count:] if use_bias else np.zeros(num_filters, np.float32)
    del biases
    return out


def _read_affine(reader: DlibReader) -> dict[str, np.ndarray]:
    """affine_ (scale, shift per channel), or a batch-norm layer saved in its place (converted the way dlib's
    ``affine_(const bn_&)`` does: scale = γ/√(running var + eps), shift = β − scale · running mean)."""
    version = reader.expect("affine_", "affine_2", "bn_con2", "bn_fc2")
    if version.startswith("bn_"):
        params = reader.tensor().reshape(-1)
        gamma = reader.alias_tensor()
        reader.alias_tensor()  # beta
        reader.tensor()  # means (of the last training batch)
        reader.tensor()  # invstds
        running_means = reader.tensor().reshape(-1)
        running_variances = reader.tensor().reshape(-1)
        reader.int()  # num_updates
        reader.int()  # running_stats_window_size
        for _ in range(4):
            reader.float()
        eps = reader.float()
        count = int(np.prod(gamma))
        if params.size != 2 * count or running_means.size != count or running_variances.size != count:
            raise reader.fail("batch-norm parameter sizes disagree")
        scale = params[:count] / np.sqrt(running_variances.astype(np.float64) + eps)
        shift = params[count:] - scale * running_means
        return {"scale": scale.astype(np.float32), "shift": shift.astype(np.float32), "conv": np.array(version == "bn_con2")}
    params = reader.tensor().reshape(-1)
    gamma = reader.alias_tensor()
    reader.alias_tensor()  # beta
    mode = reader.int()
    disabled = reader.bool() if version == "affine_2" else False
    if disabled:
        raise reader.fail("an affine layer is disabled (convolutions fused by dlib); such files are not supported")
    count = int(np.prod(gamma))
    if params.size != 2 * count:
        raise reader.fail(f"affine layer holds {params.size} values for {count} channels")
    if mode != 0:
        raise reader.fail("affine layer in fully-connected mode where a per-channel one is expected")
    return {"scale": params[:count].copy(), "shift": params[count:].copy()}


def _read_fc(reader: DlibReader, layer: Layer) -> dict[str, np.ndarray]:
    version = reader.expect("fc_2", "fc_3")
    num_outputs, num_inputs = reader.int(), reader.int()
    params = reader.tensor()
    weights = reader.alias_tensor()
    reader.alias_tensor()  # biases
    bias_mode = reader.int()
    for _ in range(4):
        reader.float()
    if version == "fc_3":
        reader.bool()  # use_bias
    if num_outputs != layer.filters or bias_mode != 1:
        raise reader.fail(f"fully-connected layer with {num_outputs} outputs, bias mode {bias_mode} is not fc_no_bias<{layer.filters}>")
    if weights[:2] != (num_inputs, num_outputs) or params.size != num_inputs * num_outputs:
        raise reader.fail("fully-connected weight shape disagrees with its header")
    return {"weight": params.reshape(num_inputs, num_outputs)}  # y = x · W


def read_dlib_resnet(data: bytes, name: str = "model") -> DlibNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat`` into its parameters."""
    reader = DlibReader(data, name)
    if reader.int() != 1:
        raise reader.fail("not a dlib loss layer (wrong version)")
    reader.expect("loss_metric_", "loss_metric_2")
    reader.float()  # margin
    reader.float()  # distance threshold
    layers = anet_layers()
    computational = [i for i, layer in enumerate(layers) if layer.kind not in ("tag", "skip")]
    versions: dict[int, int] = {}
    for i in reversed(range(len(layers))):  # every layer's version, from the outside in
        version = reader.int()
        wiring = layers[i].kind in ("tag", "skip")
        allowed = (1,) if wiring else (2, 3) if i == 0 else (1, 2)
        if version not in allowed:
            raise reader.fail(f"layer {i} ({layers[i].kind}) has version {version}, expected {allowed}")
        versions[i] = version
    reader.expect("input_rgb_image_sized")
    means = (reader.float(), reader.float(), reader.float())
    if (reader.int(), reader.int()) != (CHIP_SIZE, CHIP_SIZE):
        raise reader.fail(f"input is not {CHIP_SIZE}x{CHIP_SIZE}")
    net = DlibNet(means=means, layers=layers)
    for i in computational:  # details from the inside out
        layer = layers[i]
        if layer.kind == "con":
            net.params[i] = _read_con(reader, layer)
        elif layer.kind == "affine":
            net.params[i] = _read_affine(reader)
        elif layer.kind == "relu":
            reader.expect("relu_", "relu_2")
        elif layer.kind == "max_pool":
            _read_pool(reader, layer, ("max_pool_2",))
        elif layer.kind == "avg_pool":
            _read_pool(reader, layer, ("avg_pool_2",))
        elif layer.kind == "add_prev":
            reader.expect("add_prev_")
        elif layer.kind == "fc":
            net.params[i] = _read_fc(reader, layer)
        if i == 0:
            reader.bool(), reader.bool(), reader.bool()
            reader.tensor(), reader.tensor(), reader.tensor()  # x_grad, cached_output, grad_final
            if versions[0] >= 3:
                reader.int()  # sample expansion factor
        else:
            _read_add_layer_state(reader, versions[i])
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected bytes after the network")
    for arrays in net.params.values():
        for array in arrays.values():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise reader.fail("non-finite weights")
    return net


# ----------------------------------------------------------------------------------------------------------
# writing ONNX


def to_onnx(net: DlibNet) -> bytes:
    """The network as a serialised ONNX model: uint8 chips [N, 150, 150, 3] RGB in, descriptors [N, 128] out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []
    counter = iter(range(1 << 30))

    def const(array: np.ndarray, label: str) -> str:
        name = f"{label}_{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(kind: str, inputs: list[str], label: str, **attrs) -> str:
        out = f"{label}_{next(counter)}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    x = op("Cast", [INPUT_NAME], "float", to=TensorProto.FLOAT)
    x = op("Sub", [x, const(np.array(net.means, np.float32), "means")], "centred")
    x = op("Mul", [x, const(np.array(1.0 / 256.0, np.float32), "scale")], "scaled")
    x = op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, CHIP_SIZE, CHIP_SIZE)  # (channels, rows, cols) of the current tensor, batch excluded
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for i, layer in enumerate(net.layers):
        p = net.params.get(i, {})
        if layer.kind == "tag":
            tags[layer.tag] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.tag]
        elif layer.kind == "con":
            pad = layer.padding
            x = op("Conv", [x, const(p["weight"], "w"), const(p["bias"], "b")], "con",
                   kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2, pads=[pad] * 4)
            side = lambda n: (n + 2 * pad - layer.size) // layer.stride + 1  # noqa: E731
            shape = (layer.filters, side(shape[1]), side(shape[2]))
        elif layer.kind == "affine":
            x = op("Mul", [x, const(p["scale"].reshape(-1, 1, 1), "gamma")], "affine")
            x = op("Add", [x, const(p["shift"].reshape(-1, 1, 1), "beta")], "affine")
        elif layer.kind == "relu":
            x = op("Relu", [x], "relu")
        elif layer.kind in ("max_pool", "avg_pool") and layer.size:
            x = op("MaxPool" if layer.kind == "max_pool" else "AveragePool", [x], layer.kind,
                   kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2, pads=[layer.padding] * 4)
            side = lambda n: (n + 2 * layer.padding - layer.size) // layer.stride + 1  # noqa: E731
            shape = (shape[0], side(shape[1]), side(shape[2]))
        elif layer.kind == "avg_pool":  # avg_pool_everything
            x = op("GlobalAveragePool", [x], "avg_pool_everything")
            shape = (shape[0], 1, 1)
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.tag]
            total = tuple(max(a, b) for a, b in zip(shape, other_shape))
            x = _padded(op, const, x, shape, total)
            other = _padded(op, const, other, other_shape, total)
            x = op("Add", [x, other], "add_prev")
            shape = total
        elif layer.kind == "fc":
            x = op("Flatten", [x], "flat", axis=1)
            x = op("MatMul", [x, const(p["weight"], "fc")], "fc")
        else:
            raise DlibFormatError(f"no ONNX translation for dlib layer {layer.kind}")
    nodes[-1].output[0] = OUTPUT_NAME
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", CHIP_SIZE, CHIP_SIZE, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="facelens")
    model.ir_version = 8  # readable by every onnxruntime facelens supports
    model.doc_string = f"converted by facelens.embed.dlib_convert version {CONVERTER_VERSION}"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _padded(op, const, x: str, shape: tuple[int, int, int], total: tuple[int, int, int]) -> str:
    """``x`` zero-padded at the end of channels, rows and columns up to ``total`` (dlib's tt::add semantics)."""
    extra = [t - s for s, t in zip(shape, total)]
    if not any(extra):
        return x
    pads = np.array([0, 0, 0, 0, 0, *extra], np.int64)
    return op("Pad", [x, const(pads, "pads")], "pad", mode="constant")


# ----------------------------------------------------------------------------------------------------------
# the cache


_LOCK = threading.Lock()


def _write_atomically(target: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def converted_model(source: Path, cache: Path, source_sha256: str | None = None) -> Path:
    """The ONNX conversion of the dlib network at ``source``, built into ``cache`` on first use.

    A record (``<name>.onnx.json``) beside it holds the source's sha256, :data:`CONVERTER_VERSION` and the ONNX
    file's own sha256; when any of them no longer matches, the file is converted again. Writes are temp + rename,
    so a reader never sees half a file and concurrent converters end with the same bytes.
    """
    from facelens.models.registry import file_sha256, sha256_of

    source = Path(source)
    target = cache / "dlib_onnx" / (source.stem + ".onnx")
    record_path = target.with_name(target.name + ".json")
    source_sha = source_sha256 or sha256_of(source)
    with _LOCK:
        try:
            record = json.loads(record_path.read_text())
            if (
                record.get("source_sha256") == source_sha
                and record.get("converter_version") == CONVERTER_VERSION
                and target.is_file()
                and file_sha256(target) == record.get("onnx_sha256")
            ):
                return target
            log.info("cached %s is stale or damaged; converting again", target)
        except (OSError, ValueError):
            pass
        log.info("converting %s to ONNX (once)", source.name)
        payload = to_onnx(read_dlib_resnet(source.read_bytes(), source.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, payload)
        import hashlib

        record = {
            "source": source.name,
            "source_sha256": source_sha,
            "converter_version": CONVERTER_VERSION,
            "onnx_sha256": hashlib.sha256(payload).hexdigest(),
        }
        _write_atomically(record_path, (json.dumps(record, indent=1) + "\n").encode())
        return target


__all__ = [
    "CONVERTER_VERSION",
    "DlibFormatError",
    "DlibNet",
    "anet_layers",
    "converted_model",
    "read_dlib_resnet",
    "to_onnx",
]
