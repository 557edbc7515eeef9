"""The real operators of a run: controllers the platform's charts run in a cluster, built from their Go
modules (``tools.e2e.toolchain``) and run on this machine against the local API server and the
simulated AWS, each started as its chart's Deployment would start it.

- ``external_secrets``: the external-secrets operator, reading Secrets Manager on moto through IRSA
  or Pod Identity;
- ``karpenter``: Karpenter's core with its kwok provider serving the platform's EC2NodeClasses, with
  the platform's instance and price tables, in a loopback-only network namespace (``netns``);
- ``supervisor``: starts each once its CRDs are served, restarts it when it exits;
- ``run``: what a run starts and stops; ``scenarios``: what only a real operator can show.
"""
