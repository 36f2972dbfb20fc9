"""Shared HTTP clients of the platform's peers (Marathon, Mesos), used by every service."""
