"""Console scripts kept out of the policy packages (entry points in setup.py): rt2-init, rt2-vl-eval."""
