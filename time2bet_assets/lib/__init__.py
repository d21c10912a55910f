"""Shared machinery of the code location, below every area: resources and adapters that more than one area uses.

``lib`` never imports ``time2bet_assets.defs``; the areas import ``lib`` and never each other.
"""
