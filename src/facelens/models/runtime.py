"""One way to open an onnxruntime session: CPU provider, quiet log, a thread count the caller chooses.

Threads do not spin while idle, so a session leaves its cores to the decode and embed threads running beside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def onnx_session(model: str | os.PathLike | bytes, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for a model file (or serialised model bytes) on the CPU.

    ``threads``: intra-op threads (None: onnxruntime's default, one per physical core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # exporters leave initializers among the inputs; onnxruntime warns per tensor
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(Path(model))
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


#: Version of the graph rewrites cached by :func:`cached_rewrite`; a change makes every cached rewrite stale.
REWRITE_VERSION = 3


def rewrite_dir() -> Path:
    """Where :func:`cached_rewrite` keeps rewritten graphs (in the user cache)."""
    from facelens.models.registry import cache_dir

    return cache_dir() / "rewritten"


def cached_rewrite(path: str, rewrite: Callable[[str], bytes], suffix: str = ".onnx") -> str:
    """The model at ``path`` rewritten by ``rewrite`` (e.g. its dims made symbolic), written once into the user cache
    under the source's sha256 and :data:`REWRITE_VERSION`: rewriting costs a process 0.6 CPU s, 0.5 of it importing
    the onnx package, loading the cached file nothing (a start-up cost every ``facelens video`` paid). Written to a
    temporary name and renamed, so that a reader never sees half a file, with its own sha256 beside it: a cached
    file damaged since (or a digest missing) is made again instead of failing every later start. ``suffix`` tells
    apart several things made from one source (a graph and weights taken out of it)."""
    import hashlib

    from facelens.models.registry import file_sha256

    source = Path(path)
    target = rewrite_dir() / f"{source.stem}-{file_sha256(source)[:16]}-v{REWRITE_VERSION}{suffix}"
    stamp = target.with_name(f"{target.name}.sha256")
    try:
        if stamp.read_text().strip() == file_sha256(target):
            return str(target)
    except OSError:
        pass
    payload = rewrite(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for where, data in ((target, payload), (stamp, hashlib.sha256(payload).hexdigest().encode())):
        part = where.with_name(f"{where.name}.part-{os.getpid()}-{threading.get_ident()}")
        part.write_bytes(data)
        os.replace(part, where)
    return str(target)


def branch_free_prelu(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``) with every PRelu(x, a) computed as relu(x) + a·(x − relu(x)): the same
    numbers, but onnxruntime's PRelu kernel branches on each value's sign, and on real faces (signs mixed, unlike a
    blank test input) that costs: one 80×80 MiniFASNet face 3.0 → 1.3 CPU ms, the opencv_fer expression network
    10.7 → 3.3, SFace 22 → 11 (one thread; identical outputs)."""
    from onnx import helper

    nodes = []
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        (x, slope), y, tag = node.input, node.output[0], f"{node.name or node.output[0]}/prelu"
        nodes += [
            helper.make_node("Relu", [x], [f"{tag}/pos"]),
            helper.make_node("Sub", [x, f"{tag}/pos"], [f"{tag}/neg"]),
            helper.make_node("Mul", [f"{tag}/neg", slope], [f"{tag}/scaled"]),
            helper.make_node("Add", [f"{tag}/pos", f"{tag}/scaled"], [y]),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def prelu_rewritten(path: str) -> bytes:
    """The model file with :func:`branch_free_prelu` applied (for :func:`cached_rewrite`)."""
    import onnx

    return branch_free_prelu(onnx.load(str(path))).SerializeToString()


def shared_model(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that builds ``factory()`` once per process, under a lock, so threads that ask at the same time share
    one model (and load its file once) instead of each building its own."""
    lock = threading.Lock()
    built: list[T] = []

    def get() -> T:
        with lock:
            if not built:
                built.append(factory())
            return built[0]

    get.__doc__ = f"The shared {getattr(factory, '__name__', 'model')} of this process."
    return get


__all__ = ["REWRITE_VERSION", "branch_free_prelu", "cached_rewrite", "onnx_session", "prelu_rewritten", "shared_model"]
