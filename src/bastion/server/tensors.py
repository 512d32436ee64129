"""Open Inference Protocol tensors: datatypes and their JSON and binary encodings.

A tensor travels either as JSON (``"data"``: a flat or nested list, row-major) or, with the
``binary_data_extension``, as raw little-endian bytes after the JSON header of the body
(``parameters.binary_data_size`` says how many). BYTES elements in binary are each a 4-byte
little-endian length followed by that many bytes. This module only encodes and decodes;
what a tensor means for a model is decided in `bastion.server.oip`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.errors import FieldError, MalformedRequest

#: numpy dtypes of the fixed-size datatypes, little-endian as the protocol requires
NUMPY_DTYPES = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
#: inclusive value ranges of the integer datatypes and largest magnitudes of the float ones
INTEGER_RANGES = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
FLOAT_LIMITS = {
    "FP16": float(np.finfo(np.float16).max),
    "FP32": float(np.finfo(np.float32).max),
    "FP64": float(np.finfo(np.float64).max),
}
INTEGERS = frozenset(INTEGER_RANGES)
FLOATS = frozenset(FLOAT_LIMITS)
DATATYPES = frozenset({*NUMPY_DTYPES, "BYTES"})
INFERENCE_HEADER = "inference-header-content-length"

_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    """One decoded tensor; `values` are plain Python scalars, flat and row-major."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: list[Any]


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary section that follows it (empty without the header)."""
    if header_length is None:
        return body, b""
    if not header_length.strip().isdigit() or int(header_length) > len(body):
        raise MalformedRequest(
            f"Inference-Header-Content-Length must be a byte count between 0 and the body size "
            f"({len(body)}), got {header_length!r}"
        )
    size = int(header_length)
    return body[:size], body[size:]


def flatten(data: Any) -> list[Any]:
    """Nested lists in row-major order as one flat list; a scalar becomes a list of one."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _json_problem(datatype: str, value: Any) -> str | None:
    """Why `value` cannot be an element of a JSON tensor of `datatype`, or None."""
    if datatype == "BYTES":
        return None if isinstance(value, str) else "must be a string"
    if datatype == "BOOL":
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if datatype in FLOATS:
        limit = FLOAT_LIMITS[datatype]
        return None if abs(value) <= limit else f"must be within ±{limit:g}"
    if isinstance(value, float):
        return "must be an integer"
    low, high = INTEGER_RANGES[datatype]
    return None if low <= value <= high else f"must be in [{low}, {high}]"


def check_json_data(datatype: str, values: list[Any]) -> str | None:
    """The first element of `values` that is not of `datatype`, described, or None."""
    for index, value in enumerate(values):
        problem = _json_problem(datatype, value)
        if problem is not None:
            return f"element {index} {problem} for datatype {datatype}, got {value!r}"
    return None


def decode_binary(datatype: str, raw: bytes) -> list[Any]:
    """Raw little-endian bytes as a flat list of Python scalars; `ValueError` if malformed."""
    if datatype == "BYTES":
        values: list[Any] = []
        offset = 0
        while offset < len(raw):
            if offset + _LENGTH.size > len(raw):
                raise ValueError("BYTES element is cut off inside its 4-byte length prefix")
            (length,) = _LENGTH.unpack_from(raw, offset)
            offset += _LENGTH.size
            if offset + length > len(raw):
                raise ValueError(f"BYTES element of {length} bytes runs past the end of its data")
            try:
                values.append(raw[offset : offset + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"BYTES element {len(values)} is not valid UTF-8") from None
            offset += length
        return values
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) % dtype.itemsize:
        raise ValueError(
            f"{len(raw)} bytes is not a whole number of {datatype} elements "
            f"({dtype.itemsize} bytes each)"
        )
    decoded: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return decoded


def encode_binary(datatype: str, values: list[Any]) -> bytes:
    """A flat list of scalars as the protocol's raw little-endian bytes."""
    if datatype == "BYTES":
        parts = []
        for value in values:
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(_LENGTH.pack(len(data)) + data)
        return b"".join(parts)
    return np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tobytes()


class _BinarySection:
    """The bytes after the JSON header, handed out in input order."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int) -> bytes | None:
        if self.offset + size > len(self.data):
            return None
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def _shape(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list):
        return None
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value):
        return None
    return tuple(value)


def _parse_tensor(index: int, raw: Any, binary: _BinarySection) -> Tensor | FieldError:
    if not isinstance(raw, dict):
        return FieldError(f"inputs[{index}]", "must be a tensor object")
    name = raw.get("name")
    named = isinstance(name, str) and bool(name)
    where = f"inputs.{name}" if named else f"inputs[{index}]"
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, dict):
        return FieldError(f"{where}.parameters", "must be an object")
    size = parameters.get("binary_data_size")
    chunk: bytes | None = None
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return FieldError(f"{where}.parameters.binary_data_size", "must be a byte count")
        chunk = binary.take(size)
        if chunk is None:
            return FieldError(
                f"{where}.parameters.binary_data_size",
                f"asks for {size} bytes but the binary section holds only "
                f"{len(binary.data) - binary.offset} more",
            )
    # Checked only now, so that a bad tensor still consumes its binary bytes and the
    # tensors after it are read from the right offsets.
    if not isinstance(name, str) or not named:
        return FieldError(f"{where}.name", "is required and must be a string")
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        allowed = ", ".join(sorted(DATATYPES))
        return FieldError(f"{where}.datatype", f"must be one of {allowed}, got {datatype!r}")
    shape = _shape(raw.get("shape"))
    if shape is None:
        return FieldError(f"{where}.shape", "must be a list of non-negative integers")
    if chunk is not None:
        if "data" in raw:
            return FieldError(where, "has both 'data' and parameters.binary_data_size")
        try:
            values = decode_binary(datatype, chunk)
        except ValueError as exc:
            return FieldError(f"{where}.data", str(exc), datatype)
    elif "data" in raw:
        values = flatten(raw["data"])
        problem = check_json_data(datatype, values)
        if problem is not None:
            return FieldError(f"{where}.data", problem, datatype)
        if datatype in FLOATS:
            # An FP32 tensor holds FP32 values, whether it came as JSON or as binary.
            values = np.asarray(values, dtype=NUMPY_DTYPES[datatype]).tolist()
    else:
        return FieldError(f"{where}.data", "is required (or parameters.binary_data_size)")
    if len(values) != math.prod(shape):
        return FieldError(
            f"{where}.shape",
            f"shape {list(shape)} holds {math.prod(shape)} elements but {len(values)} were sent",
        )
    return Tensor(name, datatype, shape, values)


def parse_inputs(raw_inputs: Any, binary_data: bytes) -> list[Tensor]:
    """Decode the request's `inputs`; raise `MalformedRequest` naming every bad tensor."""
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise MalformedRequest(
            "'inputs' must be a non-empty list of tensors",
            errors=[FieldError("inputs", "must be a non-empty list")],
        )
    binary = _BinarySection(binary_data)
    tensors: list[Tensor] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_inputs):
        parsed = _parse_tensor(index, raw, binary)
        if isinstance(parsed, FieldError):
            errors.append(parsed)
        elif any(t.name == parsed.name for t in tensors):
            errors.append(FieldError(f"inputs.{parsed.name}", "is sent more than once"))
        else:
            tensors.append(parsed)
    if not errors and binary.offset != len(binary.data):
        errors.append(
            FieldError(
                "inputs",
                f"the body has {len(binary.data) - binary.offset} binary bytes no input claims",
            )
        )
    if errors:
        shown = "; ".join(f"{e.field} {e.message}" for e in errors[:5])
        raise MalformedRequest(f"invalid input tensor(s): {shown}", errors=errors)
    return tensors
