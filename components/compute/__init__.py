"""Compute: node groups, GPU pools, Karpenter, EKS Auto Mode, the cluster autoscaler, the instance type
table and the capacity model."""
