"""kiln: a deep-learning compiler for CPUs."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # kiln.compile and kiln.CompileOptions, imported on first use (the op table is not small)
    if name == "compile":
        from .api import compile
        return compile
    if name == "CompileOptions":
        from .options import CompileOptions
        return CompileOptions
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")
