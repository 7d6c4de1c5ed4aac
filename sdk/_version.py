"""The package's version, apart from its root so that modules below the root can read it."""

__version__ = "0.1.0"
