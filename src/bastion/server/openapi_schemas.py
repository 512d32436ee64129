"""JSON Schemas of Bastion's request and response bodies, for the OpenAPI document.

The OIP ones follow the KServe v2 REST spec (``$request_input``, ``$response_output``,
inference request and response); the problem document is RFC 9457 with Bastion's
``errors`` list. Deployment-specific schemas (input signatures) are built in
`bastion.server.openapi`.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
BINARY = "application/octet-stream"

PROBLEM: Schema = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "error": {"type": "string", "description": "the detail again, for OIP clients"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "expected": {"type": "string"},
                    "rule": {"type": "string"},
                    "value": {"type": "string"},
                },
            },
        },
    },
}
DATATYPE: Schema = {
    "type": "string",
    "enum": [
        *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
        *("FP16", "FP32", "FP64", "BYTES"),
    ],
}
TENSOR_METADATA: Schema = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}
#: KServe v2 REST `$request_input` / `$response_output` (JSON tensor data, or binary sizes)
REQUEST_INPUT: Schema = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": DATATYPE,
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
RESPONSE_OUTPUT: Schema = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
INFER_REQUEST: Schema = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/RequestInput"},
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
            },
        },
    },
}
INFER_RESPONSE: Schema = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/ResponseOutput"}},
    },
}
DECISION: Schema = {
    "type": "object",
    "required": ["decision_id", "deployment", "model", "prediction", "outcome", "guard"],
    "properties": {
        "decision_id": {"type": "string"},
        "deployment": {"type": "string"},
        "model": {"type": "object"},
        "prediction": {"type": "object"},
        "outcome": {},
        "guard": {"type": "object"},
        "latency_ms": {"type": "number"},
    },
}
OBJECT: Schema = {"type": "object"}
BINARY_BODY: Schema = {"type": "string", "format": "binary"}
INFERENCE_HEADER_PARAMETER: Schema = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "with binary tensor data: the byte length of the JSON header before it",
    "schema": {"type": "integer", "minimum": 0},
}


SERVER_META: Schema = {
    "type": "object",
    "required": ["name", "version", "extensions"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
}
MODEL_META: Schema = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": TENSOR_METADATA},
        "outputs": {"type": "array", "items": TENSOR_METADATA},
    },
}
