"""rayweave cluster package."""
