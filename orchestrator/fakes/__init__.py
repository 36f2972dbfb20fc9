"""Loopback fakes of Marathon and Mesos that behave as documented; used by tests and the API demo mode."""
