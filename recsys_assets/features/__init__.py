"""Features: Spark transformations over the event table and the assets that run them."""
