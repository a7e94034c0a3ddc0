"""guide: a proximity-triggered audio guide engine."""

__version__ = "0.1.0"
