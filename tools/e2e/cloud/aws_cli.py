"""``aws``: the one AWS CLI command a kubeconfig of the platform runs, answered by the simulated cloud.

    aws eks get-token --cluster-name NAME --region REGION [--role-arn ARN]

prints an ``ExecCredential`` with the local API server's token, as the real command prints one with a
presigned STS token. Like EKS, it refuses a cluster that does not exist and a role the cluster has no
access entry for. Any other command fails: nothing else of the platform may call the AWS CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from tools.e2e.cloud.store import CloudStore


def get_token(store: CloudStore, cluster_name: str, role_arn: str | None) -> dict:
    clusters = [r for r in store.all("aws:eks/cluster:Cluster") if r["outputs"].get("name") == cluster_name]
    if not clusters:
        raise SystemExit(
            f"An error occurred (ResourceNotFoundException): No cluster found for name: {cluster_name}."
        )
    if role_arn:
        entries = {r["inputs"].get("principalArn") for r in store.all("aws:eks/accessEntry:AccessEntry")}
        if role_arn not in entries:
            raise SystemExit(
                f"error: You must be logged in to the server (the role {role_arn} has no access entry)"
            )
    access = store.cluster()
    if access is None:
        raise SystemExit("the simulated cloud has no cluster endpoint")
    expires = (datetime.now(UTC) + timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {"expirationTimestamp": expires, "token": access.token},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] != ["eks", "get-token"]:
        print(
            f"the simulated aws CLI answers only 'eks get-token', not {' '.join(argv[:2])!r}", file=sys.stderr
        )
        return 252
    parser = argparse.ArgumentParser(prog="aws eks get-token")
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--region")
    parser.add_argument("--role-arn")
    parser.add_argument("--output")
    args = parser.parse_args(argv[2:])
    print(json.dumps(get_token(CloudStore.from_env(), args.cluster_name, args.role_arn)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
