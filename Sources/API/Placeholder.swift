// API: HTTP routes over the daemon's VMControl.
