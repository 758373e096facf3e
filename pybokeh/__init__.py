"""pybokeh: portrait-mode lens blur from one photo."""
__version__ = "0.1.0"
