"""The daemon's HTTP side: `server` is the listener (its thread and event loop, the connection
cap, TLS), `connection` one HTTP/1.1 connection over h11, `routes` the checks and the pages in
order, `origin` the Host and cross-site checks, `auth` basic auth; `views` the pages it serves
(JSON API, status page) built from the running daemon's parts."""
