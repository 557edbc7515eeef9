"""The in-cluster add-ons' components: External Secrets, the ingress controller, GPU support, the metrics
stack and the platform's alerts. Each reads its chart's descriptor in ``catalog.registry``."""
