"""The lab: real servers on one machine (test world, sandbox, demo, preview); never part of the product."""
