"""The Solo5 end-to-end harness: setup.sh builds Solo5, harness.py drives it."""
