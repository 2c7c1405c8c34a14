"""Jenkins: job XML rendering and the sync through python-jenkins."""
