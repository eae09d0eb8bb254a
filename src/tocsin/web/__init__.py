"""The daemon's HTTP side: `server` is the listener (TLS, basic auth, routing), `views` the
pages it serves (JSON API, status page) built from the running daemon's parts."""
