"""Standard formats that rayweave speaks besides its own: CloudEvents for run events (`cloudevents`), and a
workflow as a standalone script of plain Ray tasks for users who leave (`ray_script`, its helpers in
`ray_runtime`)."""
