"""The apiserver: the only code that reads or writes VirtualServices, DestinationRules and Deployments."""
