"""Retrieval stage: the faiss ANN index over item embeddings (Dagster-free core in ``ann_index``)."""
