"""kiln: a deep-learning compiler for CPUs."""

__version__ = "0.1.0"
