"""rayweave typesys package."""
