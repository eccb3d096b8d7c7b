"""Lookback: when does a sequence model need memory, and what does that memory cost?"""

__version__ = "0.1.0"
