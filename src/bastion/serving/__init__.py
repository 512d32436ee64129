"""The service layer both protocols call: deployments, scoring and the decision log."""
