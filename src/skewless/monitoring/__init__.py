"""Monitoring: feature logging, the skew audit and the monitors (docs/monitoring.md)."""
