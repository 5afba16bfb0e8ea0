"""Operations: the command line, Prometheus metrics, Flower's settings."""
