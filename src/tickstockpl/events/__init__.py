"""Events for AppV2: the catalog of channels and names, the transactional outbox, the Redis relay."""
