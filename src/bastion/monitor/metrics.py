"""Prometheus metrics for serving (`bastion_` prefix, base units, bounded labels).

Each server process owns one `ServingMetrics` with its own registry, so tests and several
apps in one process never collide on the global default registry.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
OOD_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bastion_requests",
            "Scoring requests by deployment, model version, API and status class.",
            ["deployment", "model_version", "api", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bastion_request_duration_seconds",
            "Time from request received to response decided, in seconds.",
            ["deployment", "api"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "bastion_batch_size_rows",
            "Rows per model call after micro-batching.",
            ["deployment"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_duration = Histogram(
            "bastion_model_call_duration_seconds",
            "Duration of one batched model call, in seconds.",
            ["deployment"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "bastion_queue_depth_rows",
            "Rows waiting for a model call.",
            ["deployment"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "bastion_model_info",
            "1 for the model version each deployment serves.",
            ["deployment", "model", "version", "framework"],
            registry=self.registry,
        )
        self.decision_log_pending = Gauge(
            "bastion_decision_log_pending",
            "Decision records waiting to be committed.",
            registry=self.registry,
        )
        self.decision_log_spooled = Counter(
            "bastion_decision_log_spooled",
            "Decision records written to the local spool because the database was unreachable.",
            registry=self.registry,
        )

        self.guard_findings = Counter(
            "bastion_guard_findings",
            "Input contract violations by deployment, rule and action (reject or flag).",
            ["deployment", "rule", "action"],
            registry=self.registry,
        )
        self.ood_flagged = Counter(
            "bastion_ood_flagged",
            "Rows whose out-of-distribution score reached the threshold.",
            ["deployment"],
            registry=self.registry,
        )
        self.ood_score = Histogram(
            "bastion_ood_score",
            "Out-of-distribution score of each scored row, in [0, 1].",
            ["deployment"],
            buckets=OOD_BUCKETS,
            registry=self.registry,
        )
        self.pii_redactions = Counter(
            "bastion_pii_redactions",
            "Personal-data values redacted, by deployment and entity (or personal field tag).",
            ["deployment", "entity"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "bastion_rate_limited",
            "Scoring requests refused with 429, by deployment and scope (deployment or key).",
            ["deployment", "scope"],
            registry=self.registry,
        )
        self.rate_limit_backend_errors = Counter(
            "bastion_rate_limit_backend_errors",
            "Rate-limit checks that could not reach the shared store (Redis).",
            ["deployment"],
            registry=self.registry,
        )
        self.shed = Counter(
            "bastion_shed",
            "Scoring requests refused with 503 by load shedding, by deployment and reason.",
            ["deployment", "reason"],
            registry=self.registry,
        )

        self.decisions = Counter(
            "bastion_decisions",
            "Decisions by deployment, outcome and what decided it (rule, band, fallback, "
            "overflow or model when no policy is set).",
            ["deployment", "outcome", "source"],
            registry=self.registry,
        )
        self.rule_hits = Counter(
            "bastion_rule_hits",
            "Decisions made by each policy rule.",
            ["deployment", "rule"],
            registry=self.registry,
        )
        self.rule_errors = Counter(
            "bastion_rule_errors",
            "Policy rules that failed to evaluate at run time, by rule.",
            ["deployment", "rule"],
            registry=self.registry,
        )
        self.explanation_duration = Histogram(
            "bastion_explanation_duration_seconds",
            "Time to explain one batch of decisions, in seconds, by method.",
            ["deployment", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.review_tasks_created = Counter(
            "bastion_review_tasks_created",
            "Review tasks created, by deployment and why (band, rule, fallback, exploration).",
            ["deployment", "reason"],
            registry=self.registry,
        )
        self.review_overflow = Counter(
            "bastion_review_overflow",
            "Cases decided by the overflow action because the review queue was full.",
            ["deployment"],
            registry=self.registry,
        )
        self.review_queue_depth = Gauge(
            "bastion_review_queue_depth",
            "Review tasks not yet resolved (open, claimed or escalated).",
            ["deployment"],
            registry=self.registry,
        )
        self.review_oldest_age = Gauge(
            "bastion_review_oldest_task_age_seconds",
            "Age of the oldest unresolved review task, in seconds (0 when none).",
            ["deployment"],
            registry=self.registry,
        )
        self.review_overdue = Gauge(
            "bastion_review_overdue_tasks",
            "Unresolved review tasks past their due time.",
            ["deployment"],
            registry=self.registry,
        )
        self.review_resolved = Counter(
            "bastion_review_resolved",
            "Review tasks resolved, by whether the verdict overturned the model's band "
            "(overturn rate = overturned / all).",
            ["deployment", "overturned"],
            registry=self.registry,
        )
        # Drift and performance of the latest monitor window (set by the MonitorJob). The
        # label sets are bounded: a deployment's features times the chosen method, per
        # serving version; the job removes a version's series when another one takes over.
        self.feature_drift = Gauge(
            "bastion_feature_drift_score",
            "Drift score of each feature in the latest window: a p-value for ks, chisquare "
            "and z (drift when small), a distance for wasserstein, jensenshannon and psi.",
            ["deployment", "model_version", "feature", "method"],
            registry=self.registry,
        )
        self.prediction_drift = Gauge(
            "bastion_prediction_drift_score",
            "Drift score of the model's prediction in the latest window, by method.",
            ["deployment", "model_version", "method"],
            registry=self.registry,
        )
        self.dataset_drift_share = Gauge(
            "bastion_dataset_drift_share",
            "Share of features drifted in the latest window (0 to 1).",
            ["deployment", "model_version"],
            registry=self.registry,
        )
        self.performance = Gauge(
            "bastion_performance",
            "Label-based performance of the latest window, by metric (roc_auc, precision, "
            "recall, ece, cost, ...).",
            ["deployment", "model_version", "metric"],
            registry=self.registry,
        )
        self.estimated_performance = Gauge(
            "bastion_estimated_performance",
            "Label-free (CBPE) performance estimate of the latest window, by metric.",
            ["deployment", "model_version", "metric"],
            registry=self.registry,
        )
        self.label_coverage = Gauge(
            "bastion_label_coverage",
            "Share of the latest window's decisions that have a feedback label (0 to 1).",
            ["deployment", "model_version"],
            registry=self.registry,
        )
        self.monitor_window_failures = Counter(
            "bastion_monitor_window_failures",
            "Monitor windows that failed to compute (the job logs the reason and goes on).",
            ["deployment"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
