"""rayweave engine package."""
