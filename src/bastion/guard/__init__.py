"""Guardrails on the request path: pseudonymized subjects today; contracts, OOD and PII next."""
