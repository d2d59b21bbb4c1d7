"""Model training: the PyTorch two-tower retrieval model."""
