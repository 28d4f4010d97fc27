"""A Flower app aggregating hospitals' model updates with secagg (see ../README.md)."""
