"""The ground station: server, simulator and command line."""
