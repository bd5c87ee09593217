"""Monitoring: feature logging, the skew audit, monitors and reports (docs/feature-logging.md, docs/audit.md)."""
