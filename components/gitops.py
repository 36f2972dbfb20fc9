"""GitOps delivery with Argo CD: two AppProjects, a root Application (app-of-apps) and one child
Application per tier, each pointing at that tier's directory of the rendered tree in the repository.

    <gitops.path>/<stack>/argocd/manifests.yaml        AppProjects + root Application (`pulumi up` applies these)
    <gitops.path>/<stack>/argocd-apps/manifests.yaml   child Applications (the root Application syncs these)
    <gitops.path>/<stack>/<tier>/manifests.yaml        the tier's objects (each child Application syncs one)

Two projects keep each Application to what it needs: the root may only create Applications in the Argo CD
namespace; the children may only deploy into the platform's namespaces, and nothing cluster-wide.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.settings import GitOpsSettings
from orchestrator.contracts import tiers

COMPONENT = tiers.ARGOCD.component_label
ARGOCD_API = "argoproj.io/v1alpha1"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
# Argo CD applies what it syncs; Pulumi must not wait for Argo CD to converge the whole platform.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
RETRY = {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
# Cluster-scoped kinds Argo CD may create for the tiers: none. The Namespaces (with their Pod Security
# labels) are Pulumi's in both delivery modes and exist before the root Application.
CLUSTER_RESOURCES: list[dict[str, str]] = []


@dataclass(frozen=True)
class Tier:
    """A directory of the rendered tree (named after the tier's component) and when Argo CD syncs it."""

    name: str
    namespace: str
    wave: int


def tier_path(g: GitOpsSettings, stack: str, tier: str) -> str:
    return f"{g.path}/{stack}/{tier}"


def _source(g: GitOpsSettings, path: str) -> dict[str, Any]:
    return {"repoURL": g.repo_url, "targetRevision": g.revision, "path": path,
            "directory": {"recurse": False}}


def child_application_spec(g: GitOpsSettings, stack: str, tier: Tier, project: str) -> dict[str, Any]:
    return {
        "project": project,
        "source": _source(g, tier_path(g, stack, tier.name)),
        "destination": {"server": g.destination_server, "namespace": tier.namespace},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "retry": RETRY,
            "syncOptions": ["CreateNamespace=true", "PruneLast=true"],
        },
    }


def project_names(namespace: str) -> tuple[str, str]:
    """(platform project, root project), both named after the platform namespace: one pair per stack."""
    return namespace, f"{namespace}-root"


@dataclass(frozen=True)
class GitOpsApplicationsArgs:
    platform: kx.PlatformContext
    gitops: GitOpsSettings
    stack: str
    tiers: Sequence[Tier]


class GitOpsApplications(pulumi.ComponentResource):
    """The child Applications. Rendered into their own directory for the root Application to sync;
    `pulumi up` never applies them (the root Application owns them)."""

    names: list[str]

    def __init__(self, name: str, args: GitOpsApplicationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:gitops:GitOpsApplications", name, None, opts)
        ns, g = args.platform.namespace, args.gitops
        labels = kx.labels(COMPONENT, COMPONENT, name)
        platform_project, _ = project_names(ns)
        child = pulumi.ResourceOptions(parent=self)
        if len({t.name for t in args.tiers}) != len(args.tiers):
            raise ValueError(f"duplicate tier in {[t.name for t in args.tiers]}")
        self.applications = []
        for tier in args.tiers:
            app_name = f"{ns}-{tier.name}"
            meta = kx.metadata(app_name, g.argocd_namespace, labels, {SYNC_WAVE: str(tier.wave)})
            # Deleting the Application deletes what it deployed (cascade), not just the Application.
            meta["finalizers"] = [RESOURCES_FINALIZER]
            self.applications.append(k8s.apiextensions.CustomResource(
                app_name, api_version=ARGOCD_API, kind="Application", metadata=meta,
                spec=child_application_spec(g, args.stack, tier, platform_project), opts=child))
        self.names = [f"{ns}-{t.name}" for t in args.tiers]
        self.register_outputs({"applications": self.names})


@dataclass(frozen=True)
class GitOpsArgs:
    platform: kx.PlatformContext
    gitops: GitOpsSettings
    stack: str
    # The rendered-tree directory of the GitOpsApplications tier: what the root Application syncs.
    applications_tier: str


class GitOps(pulumi.ComponentResource):
    """What `pulumi up` applies in GitOps delivery: the AppProjects and the root Application."""

    root_application: pulumi.Output[str]
    project: pulumi.Output[str]

    def __init__(self, name: str, args: GitOpsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:gitops:GitOps", name, None, opts)
        p, g = args.platform, args.gitops
        labels = kx.labels(COMPONENT, COMPONENT, name)
        child = pulumi.ResourceOptions(parent=self)
        platform_project, root_project = project_names(p.namespace)

        def project(project_name: str, description: str, destinations: list[str],
                    **allowed: list[dict[str, str]]) -> k8s.apiextensions.CustomResource:
            """An AppProject of this repository that may deploy only into `destinations`."""
            return k8s.apiextensions.CustomResource(
                f"{name}-{project_name}", api_version=ARGOCD_API, kind="AppProject",
                metadata=kx.metadata(project_name, g.argocd_namespace, labels, dict(SKIP_AWAIT)),
                spec={"description": description, "sourceRepos": [g.repo_url],
                      "destinations": [{"server": g.destination_server, "namespace": ns} for ns in destinations],
                      **allowed},
                opts=child)

        self.platform_project = project(
            platform_project, f"Platform tiers of {p.namespace}: this repository, the platform's namespaces only.",
            [p.namespace, p.agents_namespace], clusterResourceWhitelist=CLUSTER_RESOURCES)
        self.root_project = project(
            root_project, f"Root (app-of-apps) of {p.namespace}: creates its child Applications, nothing else.",
            [g.argocd_namespace], clusterResourceWhitelist=[],
            namespaceResourceWhitelist=[{"group": "argoproj.io", "kind": "Application"}])
        # No resources finalizer on the root: replacing or deleting it must not cascade into deleting the
        # platform. `pulumi destroy` leaves the children (and the platform) running: see docs/delivery.md.
        self.root = k8s.apiextensions.CustomResource(
            f"{name}-root", api_version=ARGOCD_API, kind="Application",
            metadata=kx.metadata(p.namespace, g.argocd_namespace, labels, dict(SKIP_AWAIT)),
            spec={
                "project": self.root_project.metadata["name"],
                "source": _source(g, tier_path(g, args.stack, args.applications_tier)),
                "destination": {"server": g.destination_server, "namespace": g.argocd_namespace},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "retry": RETRY},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.platform_project]))
        self.root_application = self.root.metadata["name"]
        self.project = self.platform_project.metadata["name"]
        self.register_outputs({"root_application": self.root_application, "project": self.project})
