"""Monitoring: feature logs, the skew audit, monitors and the report (docs/report.md)."""
