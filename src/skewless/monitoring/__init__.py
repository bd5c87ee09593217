"""Monitoring: feature logging, the skew audit, the monitors and reports (docs/feature-logging.md, docs/audit.md, docs/monitoring.md)."""
