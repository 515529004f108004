"""rayweave serve package."""
