"""Recommendations: candidates -> filtered, diversified per-user lists; "because you watched"."""
