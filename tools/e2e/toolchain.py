"""The binaries the end-to-end harness runs: found on PATH when their version fits, else built from Go
modules into a cache outside the repository, keyed by version, and reused.

    python -m tools.e2e.toolchain                      # everything, at the committed stacks' minors
    python -m tools.e2e.toolchain --kubernetes 1.36    # only the control plane of 1.36 (repeatable)
    python -m tools.e2e.toolchain --kubectl 1.36       # only kubectl of 1.36 (the scale figures' baseline)
    python -m tools.e2e.toolchain --parallel 1         # build one piece at a time
    python -m tools.e2e.toolchain --clean              # remove the cache (binaries, Go caches)

The control plane (kube-apiserver, kube-controller-manager, kube-scheduler) is built per Kubernetes
minor, at the patch ``KUBERNETES_RELEASES`` gives for it; several minors coexist in the cache, and the
harness starts the one of the stack it deploys (``aiplatform:cluster.kubernetesVersion``).

Every module comes from the Go module proxy at an exact version (the proxy serves only some versions;
the ones below are the ones it serves). Checksums are verified through the proxy's checksum database.
The cache is ``$AIPLATFORM_E2E_CACHE``, else ``$XDG_CACHE_HOME/aiplatform-e2e`` (``~/.cache/...``): a
cold build of everything takes about 20 minutes on 2 cores and the Go caches grow to about 13 GB. The
control plane of one more minor takes about 10 minutes (v1.36.3: 628 s of builds, kube-apiserver 490 s
with its modules' download, kube-controller-manager 130 s, kube-scheduler 8 s, on 2 busy cores with the
Go build cache already holding the Pulumi CLI's packages); its k8s.io modules take about 450 MB.

Besides the engine and the control plane, two operators run against the local cluster as they run in
a real one: the external-secrets operator (``external-secrets``) and Karpenter's core with its kwok
provider serving the AWS node class (``karpenter``, from the harness's own ``main`` in
``tools/e2e/operators/go/karpenter-kwok``). Missing pieces are built side by side
(``parallel_builds``): Go builds one package per core, but downloads and links are one stream each.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.e2e.stacks import committed_stack_minors

# -- pinned versions -----------------------------------------------------------------------------
PULUMI_VERSION = "v3.274.1"
# The newest pulumi-kubernetes provider module the proxy serves: a commit between v4.24.0 and v4.25.0,
# built beside its SDK module at v4.24.0 (the provider's go.mod replaces the SDK with ../sdk).
K8S_PROVIDER_MODULE_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
K8S_PROVIDER_SDK_VERSION = "v4.24.0"
K8S_PROVIDER_VERSION = "4.25.0-dev.20260115033456+f47bc2d6f199"  # what the built plugin reports
# Kubernetes minor -> the release built for it: the newest patch of the minor the proxy serves. For each,
# `go mod download` fetched k8s.io/kubernetes and its staging modules at v0.<minor>.<patch> (all but the
# k8s.io/sample-* examples, which no control-plane command imports), and `go list -deps` of the three
# commands resolved in the wrapper module below. A minor missing here cannot be run by the harness.
KUBERNETES_RELEASES: dict[str, str] = {
    "1.33": "v1.33.13",
    "1.34": "v1.34.4",
    "1.35": "v1.35.4",
    "1.36": "v1.36.3",
    "1.37": "v1.37.2",
}
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
# Prometheus 3.16's module version; its promtool checks and unit-tests the platform's rules (make test-rules).
PROMETHEUS_VERSION = "v0.316.0"
PROMTOOL_VERSION = "3.16.0"  # what the built promtool reports
# The external-secrets operator: the proxy serves no 1.x or 2.x release that builds (1.3.2's nested
# modules are not served), so the newest one that does, while the stacks pin the 2.x chart.
EXTERNAL_SECRETS_VERSION = "v0.20.4"
# Karpenter's core (its kwok cloud provider), the release the stacks' Karpenter chart pins.
KARPENTER_VERSION = "v1.14.1"
KARPENTER_MAIN = Path(__file__).resolve().parent / "operators" / "go" / "karpenter-kwok" / "main.go"

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aiplatform-e2e"


def cache_root() -> Path:
    return Path(os.environ.get("AIPLATFORM_E2E_CACHE") or DEFAULT_CACHE)


class ToolchainError(RuntimeError):
    """A binary could not be found or built."""


@dataclass
class Binary:
    """One binary the harness runs, and how it came to be."""

    name: str
    path: str
    version: str  # what the binary itself reports
    source: str  # "PATH", "cache" or "built"
    module: str = ""  # the Go module (and version) it was built from
    build_seconds: float | None = None  # the build that produced it (this run or an earlier one)
    ensure_seconds: float | None = None  # what having it took this run: its build, or finding it cached


# -- Go ----------------------------------------------------------------------------------------------
class Go:
    """The ``go`` command with the harness's own module and build caches."""

    def __init__(self, root: Path, log: Callable[[str], None]):
        self.root = root
        self.log = log
        self.env = {
            **os.environ,
            "GOMODCACHE": str(root / "go" / "mod"),
            "GOCACHE": str(root / "go" / "build"),
            "GOPATH": str(root / "go" / "path"),
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        self.log(f"  go {' '.join(args)}" + (f"   (in {cwd})" if cwd else ""))
        try:
            result = subprocess.run(
                ["go", *args],
                cwd=cwd,
                env={**self.env, **(env or {})},
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            raise ToolchainError("the Go toolchain (go 1.24 or newer) is needed to build it") from None
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
            raise ToolchainError(f"go {' '.join(args)} failed:\n{tail}")
        return result.stdout

    def download(self, module: str, version: str) -> Path:
        """The module's source directory in the module cache (read-only)."""
        out = json.loads(self.run("mod", "download", "-json", f"{module}@{version}"))
        if out.get("Error"):
            raise ToolchainError(f"{module}@{version}: {out['Error']}")
        return Path(out["Dir"])

    def copy_module(self, module: str, version: str, dest: Path) -> Path:
        """A writable copy of a module's source, for builds that generate files or use ``../`` replaces."""
        source = self.download(module, version)
        if dest.exists():
            _remove_tree(dest)
        shutil.copytree(source, dest)
        for path in [dest, *dest.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        return dest


def _remove_tree(path: Path) -> None:
    """Remove a tree even where the Go module cache made it read-only."""

    def make_writable(func, target, _exc):
        os.chmod(target, stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
        func(target)

    shutil.rmtree(path, onexc=make_writable) if sys.version_info >= (3, 12) else shutil.rmtree(
        path, onerror=make_writable
    )


# -- recipes -------------------------------------------------------------------------------------------
def _build_pulumi(go: Go, work: Path, out: Path) -> None:
    # pkg/v3's go.mod replaces sdk/v3 with ../sdk: lay both modules side by side.
    go.copy_module("github.com/pulumi/pulumi/sdk/v3", PULUMI_VERSION, work / "sdk")
    pkg = go.copy_module("github.com/pulumi/pulumi/pkg/v3", PULUMI_VERSION, work / "pkg")
    ldflags = f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}"
    go.run("build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "pulumi"), "./cmd/pulumi", cwd=pkg)


def _build_kubernetes_provider(go: Go, work: Path, out: Path) -> None:
    go.copy_module("github.com/pulumi/pulumi-kubernetes/sdk/v4", K8S_PROVIDER_SDK_VERSION, work / "sdk")
    provider = go.copy_module(
        "github.com/pulumi/pulumi-kubernetes/provider/v4", K8S_PROVIDER_MODULE_VERSION, work / "provider"
    )
    cmd = provider / "cmd" / "pulumi-resource-kubernetes"
    # generate.go stamps the version into the schema the binary embeds.
    go.run("run", "generate.go", cwd=cmd, env={"VERSION": K8S_PROVIDER_VERSION})
    ldflags = f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={K8S_PROVIDER_VERSION}"
    go.run(
        "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "pulumi-resource-kubernetes"), ".", cwd=cmd
    )


def _kubernetes_wrapper(go: Go, work: Path, version: str, commands: tuple[str, ...] = CONTROL_PLANE) -> Path:
    """A module that requires k8s.io/kubernetes and points each staging module at its published version.

    k8s.io/kubernetes replaces its staging modules with ``./staging/...`` directories, which a dependent
    module cannot use; their published versions are ``v0.<minor>.<patch>``.
    """
    go.download("k8s.io/kubernetes", version)
    gomod = Path(go.env["GOMODCACHE"]) / "cache" / "download" / "k8s.io" / "kubernetes" / "@v"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(kubernetes_wrapper_gomod(version, (gomod / f"{version}.mod").read_text()))
    imports = "".join(f'\t_ "k8s.io/kubernetes/cmd/{command}"\n' for command in commands)
    (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n")
    return work


def kubernetes_wrapper_gomod(version: str, upstream_gomod: str) -> str:
    """The wrapper module's go.mod: k8s.io/kubernetes at ``version``, each staging module its go.mod
    replaces with ``./staging/...`` pointed at its published ``v0.<minor>.<patch>``."""
    staging = re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", upstream_gomod, flags=re.MULTILINE)
    if not staging:
        raise ToolchainError(f"k8s.io/kubernetes@{version} go.mod: no staging replacements found")
    published = "v0." + version.removeprefix("v1.")
    lines = [
        "module aiplatform.local/e2e-kubernetes",
        "",
        "go 1.24",
        "",
        f"require k8s.io/kubernetes {version}",
        "",
        "replace (",
        *(f"\t{module} => {module} {published}" for module in staging),
        ")",
    ]
    return "\n".join(lines) + "\n"


def kubernetes_ldflags(version: str) -> str:
    major, minor, _ = version.removeprefix("v").split(".")
    base = "k8s.io/component-base/version"
    # Clients parse the server's version: without these stamps it reports v0.0.0-master.
    return " ".join(
        [
            f"-X {base}.gitVersion={version}",
            f"-X {base}.gitMajor={major}",
            f"-X {base}.gitMinor={minor}",
            f"-X {base}.gitTreeState=clean",
            f"-X {base}.buildDate=1970-01-01T00:00:00Z",
        ]
    )


def _kubernetes_recipe(
    command: str, version: str, commands: tuple[str, ...] = CONTROL_PLANE
) -> Callable[[Go, Path, Path], None]:
    def build(go: Go, work: Path, out: Path) -> None:
        wrapper = _kubernetes_wrapper(go, work / "module", version, commands)
        go.run(
            "build",
            "-trimpath",
            "-ldflags",
            kubernetes_ldflags(version),
            "-o",
            str(out / command),
            f"k8s.io/kubernetes/cmd/{command}",
            cwd=wrapper,
        )

    return build


def _build_etcd(go: Go, work: Path, out: Path) -> None:
    # The root etcd module is not served; the server module carries etcdmain.
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module aiplatform.local/e2e-etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
    )
    (work / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n"
    )
    go.run("build", "-trimpath", "-o", str(out / "etcd"), ".", cwd=work)


def _build_kwok(go: Go, work: Path, out: Path) -> None:
    go.run("install", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}", env={"GOBIN": str(out)})


def _build_promtool(go: Go, work: Path, out: Path) -> None:
    prometheus = go.copy_module("github.com/prometheus/prometheus", PROMETHEUS_VERSION, work / "prometheus")
    ldflags = f"-X github.com/prometheus/common/version.Version={PROMTOOL_VERSION}"
    # remove_all_sd: no service-discovery plugins (cloud SDKs), which checking rules never needs. The
    # module's go.work spans sibling modules the proxy does not ship: build the module alone.
    go.run(
        "build",
        "-trimpath",
        "-tags",
        "remove_all_sd",
        "-ldflags",
        ldflags,
        "-o",
        str(out / "promtool"),
        "./cmd/promtool",
        cwd=prometheus,
        env={"GOWORK": "off"},
    )


# -- the operators ----------------------------------------------------------------------------------
def module_wrapper_gomod(name: str, module: str, version: str, upstream_gomod: str) -> str:
    """A main module of the harness's own requiring ``module@version``, with the ``go`` line and the
    module-path ``replace`` directives of the module's own go.mod (a dependent module ignores them, and
    the module's code is only tested with them)."""
    go_line = re.search(r"^go (\S+)", upstream_gomod, flags=re.MULTILINE)
    replaces = re.findall(
        r"^\s*(?:replace\s+)?(\S+(?: v\S+)?) => ([^./\s]\S*) (v\S+)\s*$", upstream_gomod, flags=re.MULTILINE
    )
    lines = [f"module aiplatform.local/{name}", "", f"go {go_line.group(1) if go_line else '1.24'}", ""]
    lines.append(f"require {module} {version}")
    if replaces:
        lines += ["", "replace (", *(f"\t{old} => {new} {at}" for old, new, at in replaces), ")"]
    return "\n".join(lines) + "\n"


def _wrapper_module(go: Go, work: Path, name: str, module: str, version: str, main: str) -> Path:
    source = go.download(module, version)
    upstream = (source / "go.mod").read_text()
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(module_wrapper_gomod(name, module, version, upstream))
    (work / "main.go").write_text(main)
    return source


EXTERNAL_SECRETS_MODULE = "github.com/external-secrets/external-secrets"
# The upstream binary's own main (main.go of the module), in a module of the harness's own.
_EXTERNAL_SECRETS_MAIN = f"""\
// The external-secrets operator's controller, as the module's own main.go starts it.
package main

import "{EXTERNAL_SECRETS_MODULE}/cmd/controller"

func main() {{ controller.Execute() }}
"""
# The operator's controllers import one package that registers every provider (about 40 SDKs) and one
# that registers every generator; the build sees them register the AWS provider only, and no generator
# (the platform uses neither another provider nor a generator). Measured cold on 2 cores: 154 s,
# 3.5 CPU-minutes, 1.1 GB at most and an 83 MB binary, against 461 s, 8.4 CPU-minutes, 3.1 GB and
# 271 MB for every provider.
EXTERNAL_SECRETS_REGISTRATIONS = {
    "pkg/provider/register/register.go": (
        "// Only the AWS provider (Secrets Manager, Parameter Store).\npackage register\n\n"
        f'import _ "{EXTERNAL_SECRETS_MODULE}/pkg/provider/aws"\n'
    ),
    "pkg/generator/register/register.go": "// No generator.\npackage register\n",
}


def _build_external_secrets(go: Go, work: Path, out: Path) -> None:
    _wrapper_module(
        go,
        work,
        "e2e-external-secrets",
        EXTERNAL_SECRETS_MODULE,
        EXTERNAL_SECRETS_VERSION,
        _EXTERNAL_SECRETS_MAIN,
    )
    # Go overlays no file of its module cache: the module is built from a copy of itself, which the
    # wrapper requires at its version (``go version -m`` still names it) and replaces with the copy.
    source = go.copy_module(EXTERNAL_SECRETS_MODULE, EXTERNAL_SECRETS_VERSION, work / "external-secrets")
    with open(work / "go.mod", "a") as gomod:
        gomod.write(f"\nreplace {EXTERNAL_SECRETS_MODULE} => ./external-secrets\n")
    replace = {}
    for path, text in EXTERNAL_SECRETS_REGISTRATIONS.items():
        if not (source / path).exists():
            raise ToolchainError(f"{EXTERNAL_SECRETS_MODULE}@{EXTERNAL_SECRETS_VERSION} has no {path}")
        ours = work / "registrations" / path
        ours.parent.mkdir(parents=True, exist_ok=True)
        ours.write_text(text)
        replace[str(source / path)] = str(ours)
    (work / "overlay.json").write_text(json.dumps({"Replace": replace}))
    overlay = f"-overlay={work / 'overlay.json'}"
    go.run("build", "-trimpath", overlay, "-o", str(out / "external-secrets"), ".", cwd=work)


KARPENTER_MODULE = "sigs.k8s.io/karpenter"


def _build_karpenter(go: Go, work: Path, out: Path) -> None:
    _wrapper_module(
        go, work, "e2e-karpenter", KARPENTER_MODULE, KARPENTER_VERSION, KARPENTER_MAIN.read_text()
    )
    ldflags = f"-X {KARPENTER_MODULE}/pkg/operator.Version={KARPENTER_VERSION}"
    go.run("build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "karpenter"), ".", cwd=work)


def build_info_version(module: str) -> Callable[[str], str | None]:
    """For a binary with no version flag: the version of ``module`` its Go build information records
    (``go version -m``), which is the module it was built from."""

    def reported(path: str) -> str | None:
        try:
            result = subprocess.run(["go", "version", "-m", path], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = re.search(
            rf"^\s+(?:dep|mod)\s+{re.escape(module)}\s+(v\S+)", result.stdout, flags=re.MULTILINE
        )
        return match.group(1) if match else None

    return reported


@dataclass(frozen=True)
class Tool:
    name: str
    version: str  # the cache key
    module: str
    build: Callable[[Go, Path, Path], None]
    version_args: tuple[str, ...]
    version_pattern: str  # group 1 is the version the binary reports
    accepts_path_version: Callable[[str], bool] | None = None  # None: never take it from PATH
    group: str = ""  # tools built together share a cache directory
    reports: Callable[[str], str | None] | None = None  # how to ask it its version, when no flag tells

    @property
    def key(self) -> str:
        return f"{self.group or self.name}-{self.version}"


def _at_least(minimum: str) -> Callable[[str], bool]:
    def parse(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v.split("-")[0])[:3])

    return lambda found: parse(found)[:1] == parse(minimum)[:1] and parse(found) >= parse(minimum)


def _exactly(expected: str) -> Callable[[str], bool]:
    return lambda found: found.lstrip("v") == expected.lstrip("v")


TOOLS: tuple[Tool, ...] = (
    Tool(
        "pulumi",
        PULUMI_VERSION,
        f"github.com/pulumi/pulumi/pkg/v3@{PULUMI_VERSION}",
        _build_pulumi,
        ("version",),
        r"(v\d+\.\d+\.\d+\S*)",
        # The engine must be at least as new as the Python SDK that drives it.
        accepts_path_version=_at_least("v3.272.0"),
    ),
    Tool(
        "pulumi-resource-kubernetes",
        K8S_PROVIDER_MODULE_VERSION,
        f"github.com/pulumi/pulumi-kubernetes/provider/v4@{K8S_PROVIDER_MODULE_VERSION}",
        _build_kubernetes_provider,
        (),  # a plugin: asked over gRPC, as the engine asks it
        "",
    ),
    Tool(
        "etcd",
        ETCD_VERSION,
        f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}",
        _build_etcd,
        ("--version",),
        r"etcd Version: (\S+)",
        accepts_path_version=_exactly(ETCD_VERSION),
    ),
    Tool(
        "kwok",
        KWOK_VERSION,
        f"sigs.k8s.io/kwok@{KWOK_VERSION}",
        _build_kwok,
        ("--version",),
        r"version (v?\d+\.\d+\.\d+\S*)",
        accepts_path_version=_exactly(KWOK_VERSION),
    ),
)


OPERATORS: tuple[Tool, ...] = (
    Tool(
        "external-secrets",
        f"{EXTERNAL_SECRETS_VERSION}-aws",
        f"{EXTERNAL_SECRETS_MODULE}@{EXTERNAL_SECRETS_VERSION}",
        _build_external_secrets,
        (),
        "",
        reports=build_info_version(EXTERNAL_SECRETS_MODULE),
    ),
    Tool(
        "karpenter",
        # The harness's own main is part of what is built: a change to it is a new binary.
        f"{KARPENTER_VERSION}-{hashlib.sha256(KARPENTER_MAIN.read_bytes()).hexdigest()[:8]}",
        f"{KARPENTER_MODULE}@{KARPENTER_VERSION}",
        _build_karpenter,
        (),
        "",
        reports=build_info_version(KARPENTER_MODULE),
    ),
)


def kubernetes_release(minor: str) -> str:
    """The Kubernetes release the harness builds for ``minor`` ("1.36" -> "v1.36.3")."""
    release = KUBERNETES_RELEASES.get(minor)
    if release is None:
        raise ToolchainError(
            f"no Kubernetes release to build for minor {minor!r} (the stack's "
            f"aiplatform:cluster.kubernetesVersion): the harness builds {', '.join(KUBERNETES_RELEASES)}; "
            "add the minor to KUBERNETES_RELEASES in tools/e2e/toolchain.py at a patch the module proxy serves"
        )
    return release


def control_plane_tools(minor: str) -> tuple[Tool, ...]:
    """kube-apiserver, kube-controller-manager and kube-scheduler of one Kubernetes minor."""
    version = kubernetes_release(minor)
    return tuple(
        Tool(
            command,
            version,
            f"k8s.io/kubernetes@{version}",
            _kubernetes_recipe(command, version),
            ("--version",),
            r"Kubernetes (v\S+)",
            accepts_path_version=_exactly(version),
        )
        for command in CONTROL_PLANE
    )


def kubectl_tool(minor: str) -> Tool:
    """kubectl of one Kubernetes minor, at the release its control plane is built at (the client the
    scale figures' kubectl baseline runs; not part of ``ensure_all``)."""
    version = kubernetes_release(minor)
    return Tool(
        "kubectl",
        version,
        f"k8s.io/kubernetes@{version}",
        _kubernetes_recipe("kubectl", version, ("kubectl",)),
        ("version", "--client"),
        r"Client Version: (v\S+)",
        accepts_path_version=_exactly(version),
    )


def control_plane_key(command: str, minor: str) -> str:
    """The name a control-plane binary has among the harness's binaries: ``kube-apiserver@1.36``."""
    return f"{command}@{minor}"


def control_plane(binaries: Mapping[str, Binary], minor: str) -> dict[str, Binary]:
    """The control plane of ``minor`` among ``binaries``, by command name (what ``LocalCluster`` runs)."""
    missing = [c for c in CONTROL_PLANE if control_plane_key(c, minor) not in binaries]
    if missing:
        raise ToolchainError(
            f"no Kubernetes {minor} control plane among the binaries ({', '.join(missing)} missing): "
            f"ask ensure_all for minor {minor}"
        )
    return {c: binaries[control_plane_key(c, minor)] for c in CONTROL_PLANE}


# Not part of the e2e harness: the rules' checker, built on demand by ``ensure_one``.
PROMTOOL = Tool(
    "promtool",
    PROMETHEUS_VERSION,
    f"github.com/prometheus/prometheus@{PROMETHEUS_VERSION}",
    _build_promtool,
    ("--version",),
    r"promtool, version (\S+)",
    accepts_path_version=_exactly(PROMTOOL_VERSION),
)


def plugin_version(path: str) -> str | None:
    """What a Pulumi provider plugin tells the engine it is (GetPluginInfo), the way the engine asks."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import provider_pb2_grpc

    proc = subprocess.Popen([path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = (proc.stdout.readline() if proc.stdout else "").strip()
        if not port.isdigit():
            return None
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = provider_pb2_grpc.ResourceProviderStub(channel).GetPluginInfo(
                empty_pb2.Empty(), timeout=30
            )
        return info.version or None
    except grpc.RpcError:
        return None
    finally:
        proc.kill()
        proc.wait(timeout=10)


def reported_version(tool: Tool, path: str) -> str | None:
    if tool.reports is not None:
        return tool.reports(path)
    if tool.version_args == ():
        return plugin_version(path)
    try:
        result = subprocess.run(
            [path, *tool.version_args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(tool.version_pattern, result.stdout + result.stderr)
    return match.group(1) if match else None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One build at a time per cache, also across harnesses started side by side."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(tool: Tool, go: Go, log: Callable[[str], None]) -> Binary:
    """The tool's binary: from PATH if its version fits, else from the cache, else built now."""
    start = time.monotonic()
    if tool.accepts_path_version:
        found = shutil.which(tool.name)
        if found:
            version = reported_version(tool, found)
            if version and tool.accepts_path_version(version):
                return Binary(tool.name, found, version, "PATH", ensure_seconds=_since(start))
    out = go.root / "bin" / tool.key
    binary = out / tool.name
    record_path = out / f"{tool.name}.build.json"
    source = "cache"
    if not (binary.exists() and record_path.exists()):
        log(f"building {tool.name} {tool.version} from {tool.module}")
        out.mkdir(parents=True, exist_ok=True)
        work = go.root / "src" / tool.key
        tool.build(go, work, out)
        seconds = _since(start)
        record_path.write_text(json.dumps({"module": tool.module, "build_seconds": seconds}))
        source = "built"
        log(f"built {tool.name} in {seconds:.0f} s")
    record = json.loads(record_path.read_text())
    version = reported_version(tool, str(binary))
    if version is None:
        raise ToolchainError(f"{binary}: does not report a version ({' '.join(tool.version_args)})")
    return Binary(
        tool.name, str(binary), version, source, record["module"], record["build_seconds"], _since(start)
    )


def _since(start: float) -> float:
    return round(time.monotonic() - start, 1)


# A cold build of each, on this project's 2-core reference machine, in seconds: the order builds start in.
TYPICAL_BUILD_SECONDS = {
    "pulumi-resource-kubernetes": 489,
    "pulumi": 258,
    "external-secrets": 154,
    "karpenter": 300,
    "kwok": 132,
    "etcd": 35,
}

# Peak memory of one Go build of these commands (compiles on every core, then a link), with room to spare.
BUILD_MEMORY_GIB = 4


def _available_memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return BUILD_MEMORY_GIB


def parallel_builds() -> int:
    """How many builds run side by side: ``AIPLATFORM_E2E_PARALLEL_BUILDS``, else one per
    ``BUILD_MEMORY_GIB`` of available memory, at most three (each already uses every core: more only
    adds downloads and links that overlap the others' compiles)."""
    if os.environ.get("AIPLATFORM_E2E_PARALLEL_BUILDS"):
        return max(1, int(os.environ["AIPLATFORM_E2E_PARALLEL_BUILDS"]))
    return max(1, min(3, int(_available_memory_gib() // BUILD_MEMORY_GIB)))


def ensure_chains(
    chains: Iterable[Iterable[tuple[str, Tool]]], go: Go, log: Callable[[str], None], workers: int
) -> dict[str, Binary]:
    """``ensure`` every tool, by the name given with it. A chain's tools are built one after the other
    (they share most of their packages, which a build compiles once into Go's cache for the next); the
    chains run side by side on ``workers`` threads, longest first as listed."""

    def run(chain: list[tuple[str, Tool]]) -> dict[str, Binary]:
        return {name: ensure(tool, go, log) for name, tool in chain}

    binaries: dict[str, Binary] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run, list(chain)) for chain in chains]
        errors = []
        for future in futures:
            try:
                binaries |= future.result()
            except ToolchainError as exc:
                errors.append(str(exc))
    if errors:
        raise ToolchainError("\n".join(errors))
    return binaries


def ensure_all(
    log: Callable[[str], None] = print,
    root: Path | None = None,
    minors: Iterable[str] | None = None,
    workers: int | None = None,
) -> dict[str, Binary]:
    """Every binary the harness needs, by name, with the control plane of each Kubernetes minor in
    ``minors`` (default: the committed stacks' minors) as ``kube-apiserver@1.36`` and so on, and the
    operators. Missing ones are built ``workers`` at a time (default ``parallel_builds()``)."""
    if shutil.which("go") is None:
        raise ToolchainError("the Go toolchain (go 1.24 or newer) is needed to build the e2e binaries")
    wanted = sorted(set(committed_stack_minors() if minors is None else minors))
    planes = {minor: control_plane_tools(minor) for minor in wanted}  # an unknown minor fails first
    root = root or cache_root()
    go = Go(root, log)
    # Longest first (the control planes, then by a cold build's typical length), so that the short
    # builds fill in behind the long ones.
    others = sorted((*TOOLS, *OPERATORS), key=lambda t: -TYPICAL_BUILD_SECONDS.get(t.name, 0))
    chains = [
        *([(control_plane_key(t.name, minor), t) for t in tools] for minor, tools in planes.items()),
        *([(t.name, t)] for t in others),
    ]
    with _locked(root):
        return ensure_chains(chains, go, log, parallel_builds() if workers is None else workers)


def ensure_control_plane(
    minor: str, log: Callable[[str], None] = print, root: Path | None = None
) -> dict[str, Binary]:
    """The control plane of one Kubernetes minor, named as ``ensure_all`` names it (``kube-apiserver@1.36``)."""
    if shutil.which("go") is None:
        raise ToolchainError("the Go toolchain (go 1.24 or newer) is needed to build the e2e binaries")
    tools = control_plane_tools(minor)
    root = root or cache_root()
    go = Go(root, log)
    with _locked(root):
        return {control_plane_key(tool.name, minor): ensure(tool, go, log) for tool in tools}


def ensure_kubectl(minor: str, log: Callable[[str], None] = print, root: Path | None = None) -> Binary:
    """kubectl of ``minor``: from PATH at exactly that release, else from the cache, else built now."""
    if shutil.which("go") is None:
        raise ToolchainError("the Go toolchain (go 1.24 or newer) is needed to build kubectl")
    return ensure_one(kubectl_tool(minor), log=log, root=root)


def ensure_one(tool: Tool, log: Callable[[str], None] = print, root: Path | None = None) -> Binary:
    """One tool's binary, under the same cache and lock as the harness's (one build at a time)."""
    root = root or cache_root()
    with _locked(root):
        return ensure(tool, Go(root, log), log)


def kwok_stage_dir(root: Path | None = None) -> Path:
    """kwok's own stage definitions (nodes Ready, pods Running and Ready, Job pods complete), as its module
    ships them; the harness loads them from the module cache rather than keeping a copy."""
    root = root or cache_root()
    return root / "go" / "mod" / "sigs.k8s.io" / f"kwok@{KWOK_VERSION}" / "kustomize" / "stage"


def clean(root: Path | None = None) -> None:
    root = root or cache_root()
    if root.exists():
        _remove_tree(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clean", action="store_true", help="remove the cache and exit")
    parser.add_argument(
        "--kubernetes",
        action="append",
        metavar="MINOR",
        choices=list(KUBERNETES_RELEASES),
        help="build (or find) only the control plane of this Kubernetes minor (repeatable)",
    )
    parser.add_argument(
        "--kubectl",
        action="append",
        metavar="MINOR",
        choices=list(KUBERNETES_RELEASES),
        help="build (or find) only kubectl of this Kubernetes minor (repeatable)",
    )
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="builds side by side (default: by available memory)"
    )
    args = parser.parse_args(argv)
    if args.clean:
        clean()
        print(f"removed {cache_root()}")
        return 0
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.kubernetes or args.kubectl:
            binaries = {}
            for minor in args.kubernetes or ():
                binaries |= ensure_control_plane(minor, log=log)
            for minor in args.kubectl or ():
                binaries[control_plane_key("kubectl", minor)] = ensure_kubectl(minor, log=log)
        else:
            binaries = ensure_all(log=log, workers=args.parallel)
    except ToolchainError as exc:
        print(f"toolchain: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({name: asdict(b) for name, b in binaries.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
