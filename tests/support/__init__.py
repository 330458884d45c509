"""Helpers the tests share (not tests themselves): state built through the API or the
services (`flows`, `admins`, `state`), databases per worker (`databases`), the real service on
a socket (`live_server`), bursts of parallel attempts (`attempts`) and the command line
(`cli`)."""
