"""The simulated provider's Secrets Manager operations, made on moto: the secrets the program creates are
the ones a real operator reads there (one store), with the ARNs and version ids moto gives them, as AWS
gives them.

The simulated cloud (``aiplatform.plan.cloud``) still checks the inputs and computes every other output;
this module only makes the calls the AWS provider makes and takes AWS's answers into the outputs: a
secret's id is its ARN (the AWS provider's id), a version's id is ``<secret ARN>|<version id>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
TYPES = frozenset({SECRET, SECRET_VERSION})


def _tags(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())]


class SecretsManager:
    """Create, update and delete secrets and their versions through a Secrets Manager endpoint."""

    def __init__(self, endpoint: str, region: str, access_key: str, secret_key: str):
        import boto3  # imported here: the plugin loads it only when a stack has secrets

        self.client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def create(self, typ: str, inputs: Mapping[str, Any], outputs: dict[str, Any]) -> tuple[str, dict]:
        """The resource's id and outputs once created in Secrets Manager."""
        if typ == SECRET:
            created = self.client.create_secret(
                Name=inputs["name"],
                Description=inputs.get("description") or "",
                **({"KmsKeyId": inputs["kmsKeyId"]} if inputs.get("kmsKeyId") else {}),
                Tags=_tags(inputs.get("tags")),
            )
            return created["ARN"], {**outputs, "arn": created["ARN"]}
        put = self.client.put_secret_value(
            SecretId=inputs["secretId"], SecretString=inputs.get("secretString", "")
        )
        return f"{put['ARN']}|{put['VersionId']}", {
            **outputs,
            "arn": put["ARN"],
            "versionId": put["VersionId"],
            "versionStages": put.get("VersionStages", ["AWSCURRENT"]),
        }

    def update(self, typ: str, ident: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> None:
        """A secret's description, key or tags changed in place (a version is never updated: a new value
        is a new version, which the AWS provider creates by replacing it)."""
        if typ != SECRET:
            return
        if olds.get("description") != news.get("description") or olds.get("kmsKeyId") != news.get("kmsKeyId"):
            self.client.update_secret(
                SecretId=ident,
                Description=news.get("description") or "",
                **({"KmsKeyId": news["kmsKeyId"]} if news.get("kmsKeyId") else {}),
            )
        old_tags, new_tags = olds.get("tags") or {}, news.get("tags") or {}
        if gone := sorted(set(old_tags) - set(new_tags)):
            self.client.untag_resource(SecretId=ident, TagKeys=gone)
        if new_tags and new_tags != old_tags:
            self.client.tag_resource(SecretId=ident, Tags=_tags(new_tags))

    def delete(self, typ: str, ident: str, inputs: Mapping[str, Any]) -> None:
        """A secret is scheduled for deletion after its recovery window (at once with a window of 0); a
        version goes with its secret."""
        if typ != SECRET:
            return
        window = int(inputs.get("recoveryWindowInDays", 30))
        if window == 0:
            self.client.delete_secret(SecretId=ident, ForceDeleteWithoutRecovery=True)
        else:
            self.client.delete_secret(SecretId=ident, RecoveryWindowInDays=window)
