"""distributor: press-release distribution and embargo scheduling."""

__version__ = "0.1.0"
