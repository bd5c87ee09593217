"""Monitoring: feature logs, the skew audit, the monitors and the report (docs/monitoring.md)."""
