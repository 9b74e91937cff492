"""Border-news monitor: gathers news on Europe's borders, tags it and mails a weekly digest."""

__version__ = "0.1.0"
