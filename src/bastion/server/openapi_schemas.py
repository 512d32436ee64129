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
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
REASON: Schema = {
    "type": "object",
    "description": "A principal reason for an adverse outcome (reason code).",
    "required": ["field", "code", "text", "contribution"],
    "properties": {
        "field": {"type": "string"},
        "code": {"type": "string"},
        "text": {"type": "string"},
        "contribution": {"type": "number"},
    },
}
POLICY_BLOCK: Schema = {
    "type": "object",
    "description": "How the deployment's policy reached the outcome.",
    "required": ["version", "source", "fallback", "rule_errors", "review"],
    "properties": {
        "version": {"type": "string"},
        "source": {"enum": ["rule", "band", "fallback", "overflow", "model"]},
        "rule": NULLABLE_STRING,
        "band": NULLABLE_STRING,
        "reason": NULLABLE_STRING,
        "rule_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "message"],
                "properties": {"rule": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "fallback": {"type": "boolean"},
        "calibrated": {"type": "boolean"},
        "raw_score": {"type": ["number", "null"]},
        "review": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["task_id", "reason", "sampling_probability"],
                    "properties": {
                        "task_id": {"type": "string"},
                        "reason": {"enum": ["band", "rule", "fallback", "exploration"]},
                        "sampling_probability": {"type": "number"},
                    },
                },
            ]
        },
    },
}
DECISION: Schema = {
    "type": "object",
    "required": ["decision_id", "deployment", "model", "prediction", "outcome", "guard"],
    "properties": {
        "decision_id": {"type": "string"},
        "deployment": {"type": "string"},
        "model": {"type": "object"},
        "prediction": {
            "type": "object",
            "description": "The model's output; empty when the model failed and the policy's "
            "fallback decided. With a calibrated version, `score` is calibrated and "
            "`raw_score` the model's own.",
        },
        "outcome": {},
        "guard": {"type": "object"},
        "latency_ms": {"type": "number"},
        "policy": POLICY_BLOCK,
        "fallback": {
            "type": "boolean",
            "description": "With a policy: true when the model failed or timed out (decided "
            "by rules alone or the fallback outcome) or the fallback applied.",
        },
        "reasons": {"type": "array", "items": REASON},
    },
}
EXPLANATION: Schema = {
    "type": "object",
    "description": "Per-field contributions of a decision's model output and its reasons.",
    "required": [
        "decision_id",
        "method",
        "base_value",
        "contributions",
        "output",
        "margin",
        "additivity_error",
        "reasons",
        "model",
        "computed",
    ],
    "properties": {
        "decision_id": {"type": "string"},
        "method": {"type": "string"},
        "base_value": {"type": "number"},
        "contributions": {"type": "object", "additionalProperties": {"type": "number"}},
        "output": {"enum": ["log_odds", "probability", "value"]},
        "margin": {"type": "number"},
        "additivity_error": {"type": "number"},
        "reasons": {"type": "array", "items": REASON},
        "model": {"type": "object", "required": ["name", "version"]},
        "computed": {"enum": ["at_decision", "on_request"]},
    },
}
REVIEW_TASK: Schema = {
    "type": "object",
    "required": [
        "task_id",
        "decision_id",
        "deployment",
        "status",
        "priority",
        "reason",
        "sampling_probability",
        "created_at",
        "due_at",
        "overdue",
    ],
    "properties": {
        "task_id": {"type": "string"},
        "decision_id": {"type": "string"},
        "deployment": {"type": "string"},
        "status": {"enum": ["open", "claimed", "escalated", "resolved"]},
        "priority": {"type": "number"},
        "reason": {"type": "string"},
        "sampling_probability": {"type": "number"},
        "model_outcome": NULLABLE_STRING,
        "created_at": {"type": "string"},
        "due_at": {"type": "string"},
        "overdue": {"type": "boolean"},
        "claimed_by": NULLABLE_STRING,
        "verdict": NULLABLE_STRING,
    },
}
REVIEW_TASK_VIEW: Schema = {
    "allOf": [
        REVIEW_TASK,
        {
            "type": "object",
            "required": ["decision", "verdicts", "feedback"],
            "properties": {
                "decision": {"type": "object"},
                "verdicts": {"type": "array", "items": {"type": "string"}},
                "feedback": {"type": "array"},
                "notes": NULLABLE_STRING,
            },
        },
    ]
}
REVIEW_TASK_LIST: Schema = {
    "type": "object",
    "required": ["tasks"],
    "properties": {"tasks": {"type": "array", "items": REVIEW_TASK}},
}
REVIEW_STATS: Schema = {
    "type": "object",
    "required": ["depth", "oldest_age_seconds", "overdue", "by_status"],
    "properties": {
        "deployment": NULLABLE_STRING,
        "depth": {"type": "integer"},
        "oldest_age_seconds": {"type": "number"},
        "overdue": {"type": "integer"},
        "by_status": {"type": "object"},
        "deployments": {"type": "object"},
    },
}
REVIEW_CLAIM_BODY: Schema = {
    "type": "object",
    "properties": {"deployment": {"type": "string"}},
    "additionalProperties": False,
}
REVIEW_RESOLVE_BODY: Schema = {
    "type": "object",
    "required": ["verdict"],
    "properties": {"verdict": {"type": "string"}, "notes": {"type": "string"}},
    "additionalProperties": False,
}
REVIEW_NOTES_BODY: Schema = {
    "type": "object",
    "properties": {"notes": {"type": "string"}},
    "additionalProperties": False,
}
EMPTY_BODY: Schema = {"type": "object", "additionalProperties": False}
OBJECT: Schema = {"type": "object"}
FEEDBACK_BODY: Schema = {
    "type": "object",
    "required": ["label"],
    "additionalProperties": False,
    "properties": {
        "label": {"description": "A class of the decision's model (0/1 for binary), or a number"},
        "observed_at": {"type": "string", "format": "date-time"},
    },
}
FEEDBACK: Schema = {
    "type": "object",
    "required": ["id", "decision_id", "deployment", "model", "label", "source", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "decision_id": {"type": "string"},
        "deployment": {"type": "string"},
        "model": {"type": "object"},
        "subject_key": NULLABLE_STRING,
        "label": {},
        "source": {"enum": ["api", "import", "review"]},
        "sampling_probability": {"type": ["number", "null"]},
        "actor": NULLABLE_STRING,
        "created_at": {"type": "string"},
        "earlier_labels": {"type": "integer"},
    },
}
MONITOR_WINDOWS: Schema = {
    "type": "object",
    "required": ["deployment", "windows"],
    "properties": {
        "deployment": {"type": "string"},
        "windows": {"type": "array", "items": {"type": "object"}},
    },
}
MONITOR_ALERTS: Schema = {
    "type": "object",
    "required": ["deployment", "states", "history"],
    "properties": {
        "deployment": {"type": "string"},
        "states": {"type": "array", "items": {"type": "object"}},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
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
