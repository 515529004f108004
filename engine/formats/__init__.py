"""Standard formats that rayweave speaks besides its own: CloudEvents for run events (`cloudevents`)."""
