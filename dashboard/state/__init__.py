"""The read model: state read from Redis and summed up the area tree."""
