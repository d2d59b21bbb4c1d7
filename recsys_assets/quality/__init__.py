"""Data quality: asset checks on every table (basic structural checks, GX suites, drift)."""
