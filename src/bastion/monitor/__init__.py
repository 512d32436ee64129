"""Monitoring: Prometheus metrics today; drift, performance and alerts next."""
