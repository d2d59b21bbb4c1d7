"""Ingestion: landing files -> validated, de-duplicated ``raw_events`` (+ dead letters), dimensions."""
