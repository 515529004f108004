"""rayweave nodes package."""
