"""The Daily Spin: a daily news email that shows every side of a story."""

__version__ = "0.1.0"
